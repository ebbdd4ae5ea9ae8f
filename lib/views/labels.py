"""Words and figures as the pages show them: money, durations, model and price labels, Markdown escaping, config dirs."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from lib import models
from lib.cost import pricing
from lib.prompts import library

SIMULATED_NOTE = "Simulated answers from the built-in local server (offline demo), not from a real model."


def data_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where the store and export copies live: LEAD_STUDIO_DATA_DIR, else results/."""
    env = os.environ if env is None else env
    return Path(env.get("LEAD_STUDIO_DATA_DIR") or "results")


def prompts_dir(env: Mapping[str, str] | None = None) -> Path:
    """The prompt library folder: LEAD_STUDIO_PROMPTS_DIR (tests use a copy), else the shipped prompts/."""
    env = os.environ if env is None else env
    value = env.get("LEAD_STUDIO_PROMPTS_DIR")
    return Path(value) if value else library.DEFAULT_DIRECTORY


def money(value: float | None) -> str:
    """Dollars with enough significant digits for small runs; None means unpriced, never $0."""
    return pricing.format_usd(value)


def size(n_bytes: int) -> str:
    """'812 bytes', '14.2 KB', '3.1 MB'."""
    if n_bytes < 1024:
        return f"{n_bytes:,} bytes"
    if n_bytes < 1024 * 1024:
        return f"{n_bytes / 1024:,.1f} KB"
    return f"{n_bytes / 1024 / 1024:,.1f} MB"


def when(timestamp: float | None, now: float | None = None) -> str:
    """'just now', '5 min ago', '3 h ago', else the date and time."""
    if not timestamp:
        return "—"
    now = time.time() if now is None else now
    age = now - timestamp
    if age < 60:
        return "just now"
    if age < 3600:
        return f"{int(age // 60)} min ago"
    if age < 86400:
        return f"{int(age // 3600)} h ago"
    return dt.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")


def duration(seconds: float | None) -> str:
    """'42 s', '3 min 5 s', '1 h 02 min'; '—' when unknown."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "—"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def price_label(model: str, aliases: Mapping[str, str] | None = None) -> str:
    """'gpt-4o-mini · $0.15 in / $0.60 out per 1M tokens', 'my-model · unpriced', or for a name priced as
    another model 'gpt-4o-mini-json · priced as gpt-4o-mini · $0.15 in / $0.60 out per 1M tokens'."""
    price = pricing.price_for(model, aliases=aliases)
    if price is None:
        return f"{model} · unpriced"
    target = (aliases or {}).get(model)
    shown = f"{model} · priced as {target}" if target and pricing.price_for(model) is None else model
    return f"{shown} · ${_per_million(price.input)} in / ${_per_million(price.output)} out per 1M tokens"


def price_as_choices() -> list[str]:
    """The priced models a deployment or proxy name can be priced as, for an 'as' select box."""
    return sorted(pricing.PRICES)


def _per_million(dollars: float) -> str:
    """0.6 -> '0.60', 0.025 -> '0.025', 10 -> '10.00'."""
    text = f"{dollars:.3f}"
    return text[:-1] if text.endswith("0") else text


def model_choices(current: str | None = None) -> list[str]:
    """Priced models, the default first; a typed-in model the user chose stays in the list."""
    names = [models.DEFAULT_MODEL, *sorted(n for n in pricing.PRICES if n != models.DEFAULT_MODEL)]
    if current and current not in names:
        names.append(current)
    return names


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def frame_digest(df: pd.DataFrame) -> str:
    """A content hash of a table (index, headers, cells), for caching quotes of chained tables."""
    cells = pd.util.hash_pandas_object(df.astype(str), index=True).to_numpy().tobytes()
    header = "\0".join(map(str, df.columns)).encode()
    return hashlib.sha256(header + cells).hexdigest()


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def md_escape(text: str) -> str:
    """Text safe to pass to st.error/st.warning/st.caption, which render Markdown.

    Messages can carry text from a lead file (a header) or a server: escaped, `![x](url)` stays text
    instead of an image the browser fetches, and `$…$` stays text instead of LaTeX.
    """
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(text))
