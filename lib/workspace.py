"""The workspace: everything a user has set up, as one plain object, saved on every change.

A workspace holds the lead file and how it was read, the prompt draft, the run settings, the sample and
the attached run. The app keeps only its id in the URL (`?ws=…`) and in session state, so leaving a page,
a reload, a second tab and a server restart all bring back exactly what was there. Widgets are views of
it: a page sets each widget's value from the workspace before drawing and writes back in `on_change`.

What it never holds: the API key. A typed key lives in one browser session only (see pages/_connection.py).
The file's bytes are kept once per content under `<data dir>/uploads/`, named by their SHA-256.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import secrets
import tempfile
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from lib.cost.pricing import Price, price_for
from lib.engine.settings import RunSettings
from lib.models import DEFAULT_MODEL, retirement
from lib.prompts.draft import Draft
from lib.store import Store, StoreError
from lib.workbench.state import Workbench, draft_from_dict

ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
UPLOADS = "uploads"
MAX_RECENT = 50

Ragged = Literal["reject", "skip"]


@dataclass
class LeadSource:
    """Which file was uploaded and how it was read: enough to read it again, exactly, after a restart."""

    file_name: str
    digest: str  # sha256 of the bytes, which live under <data dir>/uploads/<digest>
    size: int
    sheet: str | None = None  # None: the first sheet with a table
    encoding: str | None = None  # None: detected
    ragged: Ragged = "reject"
    derived_from_run: str | None = None  # a results table chained into a new prompt


@dataclass
class Connection:
    """Where requests go, as the user set it (never the key: that stays in the browser session)."""

    demo: bool | None = None  # None: not chosen yet (the app starts in the demo when there is no key)
    base_url: str = ""  # "" = the environment's OPENAI_BASE_URL, else api.openai.com


@dataclass
class Settings:
    """Run settings. `max_tokens`, `temperature`, `reasoning_effort` and `model` follow the prompt's defaults
    until the user sets them (`*_set` says so), so a value is never forced over what the user typed."""

    model: str = DEFAULT_MODEL
    model_set: bool = False
    max_tokens: int | None = None
    max_tokens_set: bool = False
    temperature: float | None = None
    temperature_set: bool = False
    reasoning_effort: str | None = None  # None: the prompt's, else the catalog's default (lib.models)
    reasoning_effort_set: bool = False
    workers: int = 16
    rpm: int | None = None
    tpm: int | None = None
    budget_usd: float | None = None
    empty: Literal["send", "skip"] = "send"
    batch: bool = False
    price_input: float | None = None  # the user's price (USD per 1M tokens) for an unpriced model
    price_output: float | None = None
    # Deployment or proxy names priced as a known model ({"gpt-4o-mini-json": "gpt-4o-mini"}).
    price_aliases: dict[str, str] = field(default_factory=dict)
    give_up_after_s: float | None = None  # pause when nothing succeeds this long while the server refuses
    id_columns: list[str] | None = None  # identifying columns shown before the answer (None: suggested)
    sample_n: int = 5
    sample_how: Literal["first", "random"] = "first"
    service_tier: Literal["default", "flex", "priority", "fast", "auto"] = "default"
    flex_fallback: bool = False  # continue at the standard price if flex capacity stays unavailable
    flex_patience_s: float = 600.0
    csv_for: Literal["spreadsheet", "crm"] = "spreadsheet"  # the CSV export: guarded, or exact for a CRM
    flagged_first: bool = True  # the live table puts the rows a quality check flagged first
    # The API requests go through: "auto" (the Responses API on OpenAI, Chat Completions elsewhere), or one
    # of them (lib.engine.transports.choose); web research always goes through the Responses API.
    api: Literal["auto", "responses", "chat"] = "auto"
    max_tool_calls: int | None = None  # web research: the most billed searches a row may make (None: 3)


@dataclass
class Websites:
    """The Data page's "Read websites" step: which column, how, and the job that read it."""

    url_column: str | None = None
    about_page: bool = False
    allow_hosts: str = ""  # intranet hosts that may be read although private, as typed (one per line)
    job_id: str | None = None  # set: the table carries website_text and website_error from this reading


@dataclass
class Workspace:
    id: str
    created_at: float = 0.0
    updated_at: float = 0.0
    lead: LeadSource | None = None
    prompt_source: str | None = None  # the library prompt the draft was opened from ("" = blank)
    draft: Draft | None = None
    settings: Settings = field(default_factory=Settings)
    connection: Connection = field(default_factory=Connection)
    sample_run_id: str | None = None  # the latest sample, shown on the Run page
    run_id: str | None = None  # the attached run
    results_run_id: str | None = None  # the run the Results page shows (None: the attached one)
    history_run_id: str | None = None
    websites: Websites = field(default_factory=Websites)
    # Placeholder -> column, as the user confirmed it for this file (the prompt itself keeps its names).
    mapping: dict[str, str] = field(default_factory=dict)
    workbench: Workbench = field(default_factory=Workbench)

    # --- what the pages ask of it -------------------------------------------------------------

    def effective_model(self) -> str:
        return self.settings.model or DEFAULT_MODEL

    def effective_max_tokens(self) -> int | None:
        s = self.settings
        return s.max_tokens if s.max_tokens_set or self.draft is None else self.draft.max_tokens

    def effective_temperature(self) -> float | None:
        s = self.settings
        return s.temperature if s.temperature_set or self.draft is None else self.draft.temperature

    def effective_effort(self) -> str | None:
        """The reasoning effort wished for (None: the model's cheapest, see lib.models.effort_for)."""
        s = self.settings
        if s.reasoning_effort_set or self.draft is None:
            return s.reasoning_effort
        return self.draft.reasoning_effort

    def origin(self, name: Literal["max_tokens", "temperature", "model", "reasoning_effort"]) -> str:
        """Where a run setting's value comes from, in words: 'you' or 'the prompt <name>'."""
        if getattr(self.settings, f"{name}_set") or self.draft is None:
            return "set by you"
        return f"from the prompt {self.draft.name!r}"

    def get_path(self, path: str) -> Any:
        """A field by its dotted path ('settings.workers', 'draft.template'); None past a missing part."""
        obj: Any = self
        for part in path.split("."):
            obj = getattr(obj, part) if obj is not None else None
        return obj

    def set_path(self, path: str, value: Any) -> None:
        """Set a field by its dotted path as the user typed it: a setting records that the user chose it,
        a draft field makes a draft when there is none."""
        part, _, name = path.rpartition(".")
        if part == "settings":
            self.set_setting(name, value)
        elif part == "draft":
            self.set_draft_field(name, value)
        else:
            setattr(self.get_path(part) if part else self, name, value)

    def custom_price(self, model: str) -> Price | None:
        """The price the user gave a model the price table does not know: priced as a known model, or typed
        in (USD per 1M tokens). None for a known model, or when none was given."""
        if price_for(model) is not None:
            return None
        s = self.settings
        if s.price_aliases.get(model):
            return price_for(model, aliases=s.price_aliases)
        if not s.price_input and not s.price_output:
            return None
        return Price(float(s.price_input or 0), float(s.price_input or 0), float(s.price_output or 0))

    def run_settings(self, workers: int | None = None) -> RunSettings:
        """The engine's settings from the workspace's (`workers` overrides, as a sample run does)."""
        s = self.settings
        return RunSettings(
            workers=int(workers or s.workers),
            rpm=s.rpm,
            tpm=s.tpm,
            budget_usd=s.budget_usd,
            give_up_after_s=s.give_up_after_s,
            service_tier=s.service_tier,
            flex_fallback=s.flex_fallback,
            flex_patience_s=s.flex_patience_s,
        )

    def api_choice(self) -> str | None:
        """The API the user chose for runs (None: the endpoint's own, lib.engine.transports.choose)."""
        return None if self.settings.api == "auto" else self.settings.api

    def results_run(self) -> str | None:
        return self.results_run_id or self.run_id

    def title(self) -> str:
        """'leads.csv · Icebreaker', for the list of recent workspaces."""
        parts = [self.lead.file_name if self.lead else "no file"]
        if self.draft is not None:
            parts.append(self.draft.name)
        return " · ".join(parts)

    # --- changes the pages make -----------------------------------------------------------------

    def choose_prompt(self, source: str, draft: Draft) -> None:
        """Open a prompt: its defaults are offered for the settings the user has not set."""
        self.prompt_source = source
        self.draft = draft
        if draft.model and not self.settings.model_set:
            self.settings.model = draft.model
        self.sample_run_id = None

    def follow_current_default(self) -> str | None:
        """A model the user never chose that is shut down or shutting down (an earlier release's default)
        moves to today's default model; returns what to tell the user, or None when nothing changed."""
        s = self.settings
        if s.model_set or (self.draft is not None and self.draft.model == s.model):
            return None
        status = retirement(s.model)
        if status.state == "current" or s.model == DEFAULT_MODEL:
            return None
        old, s.model = s.model, DEFAULT_MODEL
        return f"{status.words()} This list now uses {DEFAULT_MODEL}, the current default; pick {old} in the sidebar to keep it."

    def set_lead(self, lead: LeadSource) -> None:
        if self.lead != lead:
            self.lead = lead
            self.sample_run_id = None

    def set_setting(self, name: str, value: Any) -> None:
        """One run setting, as the user typed it; the *_set flags record that the user chose it."""
        if name not in {f.name for f in fields(Settings)}:
            raise KeyError(name)
        setattr(self.settings, name, value)
        if hasattr(self.settings, f"{name}_set"):
            setattr(self.settings, f"{name}_set", True)

    def set_price_alias(self, model: str, priced_as: str | None) -> None:
        """Price `model` (a deployment or proxy name) as the priced model `priced_as`; None removes it."""
        aliases = dict(self.settings.price_aliases)
        if priced_as:
            aliases[model] = priced_as
        else:
            aliases.pop(model, None)
        self.settings.price_aliases = aliases

    def set_draft_field(self, name: str, value: Any) -> None:
        if self.draft is None:
            self.draft = Draft()
        if name not in {f.name for f in fields(Draft)}:
            raise KeyError(name)
        setattr(self.draft, name, value)

    # --- (de)serialisation ------------------------------------------------------------------------

    def to_json(self) -> str:
        # Not sort_keys: a draft's JSON schema lists its properties in output-column order.
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Workspace:
        data = json.loads(text)
        return cls(
            id=data["id"],
            created_at=data.get("created_at", 0.0),
            updated_at=data.get("updated_at", 0.0),
            lead=_build(LeadSource, data.get("lead")),
            prompt_source=data.get("prompt_source"),
            draft=_draft(data.get("draft")),
            settings=_build(Settings, data.get("settings")) or Settings(),
            connection=_build(Connection, data.get("connection")) or Connection(),
            sample_run_id=data.get("sample_run_id"),
            run_id=data.get("run_id"),
            results_run_id=data.get("results_run_id"),
            history_run_id=data.get("history_run_id"),
            websites=_build(Websites, data.get("websites")) or Websites(),
            mapping={str(k): str(v) for k, v in (data.get("mapping") or {}).items()},
            workbench=Workbench.from_dict(data.get("workbench")),
        )


def _build(kind: type, data: dict | None):
    """A dataclass from saved fields, ignoring fields a newer or older version does not know."""
    if data is None:
        return None
    known = {f.name for f in fields(kind)}
    return kind(**{k: v for k, v in data.items() if k in known})


def _draft(data: dict | None) -> Draft | None:
    return draft_from_dict(data)


def new_id() -> str:
    """Unguessable: the id is in the URL, and whoever has it can open the workspace."""
    return secrets.token_urlsafe(12)


class WorkspaceError(Exception):
    """A workspace that can't be opened; the message is meant for the user."""


class Workspaces:
    """Workspaces in the store's SQLite file (table `workspaces`), plus the uploaded files they point at."""

    def __init__(self, store: Store):
        self.store = store
        self.uploads = store.data_dir / UPLOADS

    def create(self) -> Workspace:
        now = time.time()
        ws = Workspace(id=new_id(), created_at=now, updated_at=now)
        self.save(ws)
        return ws

    def save(self, ws: Workspace) -> None:
        ws.updated_at = time.time()
        self.store.save_workspace(ws.id, ws.created_at, ws.updated_at, ws.to_json())

    def load(self, ws_id: str | None) -> Workspace | None:
        if not ID_PATTERN.match(ws_id or ""):
            return None
        data = self.store.workspace_json(ws_id or "")
        return Workspace.from_json(data) if data is not None else None

    def recent(self, limit: int = MAX_RECENT) -> list[Workspace]:
        return [Workspace.from_json(data) for data in self.store.recent_workspaces_json(limit)]

    def delete(self, ws_id: str) -> None:
        """Forget a workspace. Its runs stay in History; an upload no other workspace uses is deleted."""
        ws = self.load(ws_id)
        self.store.delete_workspace(ws_id)
        if ws is not None and ws.lead is not None and not self.store.upload_in_use(ws.lead.digest):
            (self.uploads / ws.lead.digest).unlink(missing_ok=True)

    # --- uploaded files -----------------------------------------------------------------------------

    def put_file(self, data: bytes) -> str:
        """Keep an upload's bytes (once per content); returns its digest."""
        digest = hashlib.sha256(data).hexdigest()
        path = self.uploads / digest
        if path.exists() and path.stat().st_size == len(data):
            return digest
        tmp: str | None = None
        try:
            self.uploads.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.uploads, prefix=".upload-")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            if tmp is not None:  # a half-written copy would only take the space a full disk lacks
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            raise StoreError(
                f"The uploaded file could not be kept in {self.uploads}: {exc.strerror}"
            ) from exc
        return digest

    def file_bytes(self, digest: str) -> bytes | None:
        if not re.fullmatch(r"[0-9a-f]{64}", digest or ""):
            return None
        path = self.uploads / digest
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None


def replace_fields(obj, **changes):
    """dataclasses.replace for the nested parts (kept here so pages need not import dataclasses)."""
    return dataclasses.replace(obj, **changes)
