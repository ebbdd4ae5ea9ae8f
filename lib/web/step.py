"""The Data page's "Read websites" step as plain functions: which column holds the addresses, which cells
are read, and the settings the workspace's choices (and the server's allowed intranet hosts) make."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

import pandas as pd

from lib.views.web_status import parse_hosts
from lib.web.fetch import FetchSettings
from lib.web.job import WebSettings

ALLOW_ENV = "LEAD_STUDIO_ALLOW_HOSTS"  # the server's list of intranet hosts that may be read, for everyone
WORKERS = 8
_ADDRESS_NAMES = re.compile(r"web ?site|url|domain|homepage|site", re.I)


def guess_column(columns: list[str]) -> str | None:
    """The column most likely to hold websites: 'Website', 'Website URL', 'Company Domain'…"""
    named = [c for c in columns if _ADDRESS_NAMES.search(c) and "linkedin" not in c.lower()]
    return named[0] if named else None


def default_hosts(env: Mapping[str, str] | None = None) -> str:
    """The intranet hosts the server allows for everyone, as configured (one per line or comma)."""
    return (os.environ if env is None else env).get(ALLOW_ENV, "")


def settings_for(about_page: bool, allow_hosts: str, env: Mapping[str, str] | None = None) -> WebSettings:
    """The reading's settings: the About page when asked, the hosts typed plus the server's."""
    return WebSettings(
        workers=WORKERS,
        fetch=FetchSettings(about_page=about_page),
        allow_hosts=parse_hosts(default_hosts(env) + "\n" + allow_hosts),
    )


def cells_of(df: pd.DataFrame, column: str) -> dict[int, str]:
    """Row id -> the address cell as text."""
    return {int(i): str(v) for i, v in df[column].items()}
