"""Whether a model still answers: its shutdown date from the endpoint's model list, else from the catalog."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable
from dataclasses import dataclass

from lib.models import catalog

TODAY_ENV = "LEAD_STUDIO_TODAY"  # YYYY-MM-DD: a fixed "today" for tests and demos (never set in production)


def today() -> dt.date:
    """Today in UTC (OpenAI's shutdown dates are calendar days), or LEAD_STUDIO_TODAY when set."""
    fixed = (os.environ.get(TODAY_ENV) or "").strip()
    if fixed:
        return dt.date.fromisoformat(fixed)
    return dt.datetime.now(dt.UTC).date()


@dataclass(frozen=True)
class ListedModel:
    """One entry of an endpoint's GET /v1/models."""

    id: str
    shutdown_date: dt.date | None = None
    owned_by: str | None = None

    def to_json(self) -> dict:
        date = self.shutdown_date.isoformat() if self.shutdown_date else None
        return {"id": self.id, "shutdown_date": date, "owned_by": self.owned_by}

    @classmethod
    def from_json(cls, data: dict) -> ListedModel:
        return cls(str(data["id"]), parse_date(data.get("shutdown_date")), data.get("owned_by"))


def parse_date(value: object) -> dt.date | None:
    """A shutdown_date as servers write it: "2027-01-14", a Unix time, or nothing."""
    if value in (None, ""):
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(value, dt.UTC).date()
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


@dataclass(frozen=True)
class Retirement:
    model: str
    state: str  # current | retiring | retired
    date: dt.date | None
    replacement: str | None
    source: str  # where the date comes from, for people

    @property
    def retired(self) -> bool:
        return self.state == "retired"

    @property
    def retiring(self) -> bool:
        return self.state == "retiring"

    def words(self, on: dt.date | None = None) -> str:
        """'gpt-4o-mini shuts down on 14 Jan 2027 (in 40 days); OpenAI suggests gpt-6-luna.' ('' if current)."""
        if self.state == "current" or self.date is None:
            return ""
        suggest = f" OpenAI suggests {self.replacement}." if self.replacement else " Pick a current model."
        when = format_date(self.date)
        if self.retired:
            return f"{self.model} was shut down on {when} and no longer answers.{suggest}"
        days = (self.date - (on or today())).days
        soon = "tomorrow" if days == 1 else f"in {days} days"
        return f"{self.model} shuts down on {when} ({soon}).{suggest}"


def format_date(date: dt.date) -> str:
    return f"{date.day} {date.strftime('%b %Y')}"


def retirement(
    model: str, *, listing: Iterable[ListedModel] | None = None, on: dt.date | None = None
) -> Retirement:
    """The model's state on `on` (default today): the endpoint's shutdown_date wins over the catalog's date."""
    on = on or today()
    known = catalog.shutdown(model)
    replacement = known.replacement if known else None
    date, source = (known.date, f"the studio's model list (as of {catalog.as_of()})") if known else (None, "")
    for entry in listing or ():
        if entry.id in (model, catalog.base_name(model)) and entry.shutdown_date is not None:
            date, source = entry.shutdown_date, "the endpoint's model list"
            if entry.id == model:
                break
    if date is None:
        return Retirement(model, "current", None, None, "")
    state = "retired" if date <= on else "retiring"
    return Retirement(model, state, date, replacement, source)
