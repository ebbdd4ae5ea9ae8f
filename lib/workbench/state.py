"""The workbench's part of a workspace: the fixed sample, up to four variant columns, and the ratings.

A variant is a frozen copy of a prompt (a Draft) with the model settings it was tried with, and the run
that answered it over the sample. The workbench keeps the columns the user tried so old and new answers
sit side by side; the newest try of the draft is stale when the draft has changed since (its fingerprint,
the hash of the requests it would send for the sample rows, is no longer the draft's). Ratings belong to
an answer, keyed by its request hash: the same request is answered from the cache with the same text, so
a rating follows the answer into every column that shows it.
"""

from __future__ import annotations

import copy
import hashlib
import json
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from lib import models
from lib.prompts import templates
from lib.prompts.checks import Checks
from lib.prompts.draft import Draft
from lib.prompts.templates import PromptSpec

MAX_VARIANTS = 4

Kind = Literal["try", "version", "model"]


@dataclass
class Rating:
    vote: int = 0  # +1 liked, -1 disliked, 0 none
    note: str = ""


@dataclass
class Variant:
    """One column of the workbench: a prompt, the model settings, and the run that answered the sample."""

    key: str
    label: str
    kind: Kind  # "try": the draft as it was when tried; "version": a saved version; "model": other settings
    draft: Draft
    model: str
    temperature: float | None = None
    max_tokens: int | None = None
    rows_per_request: int | None = None
    reasoning_effort: str | None = None  # None: the prompt's, else the model's cheapest (lib.models)
    fingerprint: str = ""  # the requests it sends for the sample rows (see fingerprint())
    run_id: str | None = None
    tried_at: float = 0.0
    row_ids: list[int] = field(default_factory=list)  # the sample it was tried on

    def settings_text(self) -> str:
        """'gpt-6-luna · effort none · 5 rows per request'."""
        parts = [self.model]
        effort = models.effort_for(self.model, self.reasoning_effort or self.draft.reasoning_effort)
        if effort is not None:
            parts.append(f"effort {effort}")
        if self.temperature is not None:
            parts.append(f"temperature {self.temperature:g}")
        if self.rows_per_request and self.rows_per_request > 1:
            parts.append(f"{self.rows_per_request} rows per request")
        return " · ".join(parts)


@dataclass
class Workbench:
    """What the Prompt page's trying half shows. Plain values: saved as JSON with the workspace."""

    sample: dict[str, Any] = field(default_factory=dict)  # lib.workbench.sample.SampleChoice's fields
    row_ids: list[int] = field(default_factory=list)  # the fixed sample every variant is tried on
    variants: list[Variant] = field(default_factory=list)
    ratings: dict[str, Rating] = field(default_factory=dict)  # request hash -> rating
    only_differing: bool = False
    diff_pair: list[str] = field(default_factory=list)  # two variant keys for the word-level difference
    tries: int = 0  # how many times the draft was tried (numbers the "Try N" labels)
    chosen: str | None = None  # the variant "Use this" made the run's prompt

    # --- columns -------------------------------------------------------------------------------------

    def find(self, key: str | None) -> Variant | None:
        return next((v for v in self.variants if v.key == key), None)

    def latest_try(self) -> Variant | None:
        tries = [v for v in self.variants if v.kind == "try"]
        return max(tries, key=lambda v: v.tried_at) if tries else None

    def room_for(self, for_kind: Kind) -> tuple[Variant | None, str | None]:
        """(the column a new variant of this kind would replace, or None; why there is no room, or None).

        The oldest try that is not the newest goes first (its run stays in History); a new try may take the
        newest try's place when nothing else can go; the chosen column never goes."""
        if len(self.variants) < MAX_VARIANTS:
            return None, None
        latest = self.latest_try()
        earlier = sorted(
            (v for v in self.variants if v.kind == "try" and v is not latest and v.key != self.chosen),
            key=lambda v: v.tried_at,
        )
        if earlier:
            return earlier[0], None
        if for_kind == "try" and latest is not None and latest.key != self.chosen:
            return latest, None
        what = "try again" if for_kind == "try" else "add another"
        return None, f"At most {MAX_VARIANTS} variants sit side by side: remove one to {what}."

    def make_room(self, for_kind: Kind) -> str | None:
        """Free a column for a new variant (see room_for); returns why there is no room, or None."""
        victim, reason = self.room_for(for_kind)
        if victim is not None:
            self.remove(victim.key)
        return reason

    def add(self, variant: Variant) -> str | None:
        """Add a column; returns why it could not be added, or None."""
        reason = self.make_room(variant.kind)
        if reason:
            return reason
        self.variants.append(variant)
        if len(self.variants) >= 2:  # a new column is compared with the one before it, as a diff reads
            self.diff_pair = [self.variants[-2].key, variant.key]
        self._fix_pair()
        return None

    def remove(self, key: str) -> None:
        self.variants = [v for v in self.variants if v.key != key]
        if self.chosen == key:
            self.chosen = None
        self._fix_pair()

    def _fix_pair(self) -> None:
        """Keep the word-diff pair pointing at existing columns: by default the two newest."""
        keys = [v.key for v in self.variants]
        pair = [k for k in self.diff_pair if k in keys]
        for k in reversed(keys):
            if len(pair) >= 2:
                break
            if k not in pair:
                pair.insert(0, k)
        self.diff_pair = pair[:2]

    def stale(self, variant: Variant, draft_fingerprint: str | None) -> bool:
        """True for the newest try when the draft has changed since it was tried (and is not another
        column's prompt either, as after "Use this"), on the rows of the current sample."""
        latest = self.latest_try()
        return (
            variant.kind == "try"
            and latest is not None
            and variant.key == latest.key
            and draft_fingerprint is not None
            and not self.needs_try(variant)
            and all(v.fingerprint != draft_fingerprint for v in self.variants if not self.needs_try(v))
        )

    def needs_try(self, variant: Variant) -> bool:
        """A column not (yet) answered on the current sample's rows."""
        return not variant.run_id or variant.row_ids != self.row_ids

    def same_as(self, fingerprint_: str | None) -> Variant | None:
        """The column, tried on the current rows, whose requests are exactly these."""
        if not fingerprint_:
            return None
        return next(
            (v for v in self.variants if not self.needs_try(v) and v.fingerprint == fingerprint_), None
        )

    def set_sample(self, sample: Mapping[str, Any], row_ids: Sequence[int]) -> None:
        """A new fixed sample. The columns stay, marked as tried on other rows until tried again."""
        self.sample = dict(sample)
        self.row_ids = [int(r) for r in row_ids]

    # --- ratings -------------------------------------------------------------------------------------

    def rating(self, request_hash: str | None) -> Rating:
        return self.ratings.get(request_hash or "", Rating())

    def rate(self, request_hash: str, vote: int | None = None, note: str | None = None) -> None:
        current = self.ratings.get(request_hash, Rating())
        rating = Rating(
            vote=current.vote if vote is None else int(vote), note=current.note if note is None else note
        )
        if rating.vote == 0 and not rating.note.strip():
            self.ratings.pop(request_hash, None)
        else:
            self.ratings[request_hash] = rating

    # --- JSON ----------------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Workbench:
        if not data:
            return cls()
        return cls(
            sample=dict(data.get("sample") or {}),
            row_ids=[int(r) for r in data.get("row_ids") or []],
            variants=[_variant(v) for v in data.get("variants") or [] if isinstance(v, dict)],
            ratings={
                k: Rating(**{f: r[f] for f in ("vote", "note") if f in r})
                for k, r in (data.get("ratings") or {}).items()
                if isinstance(r, dict)
            },
            only_differing=bool(data.get("only_differing")),
            diff_pair=[str(k) for k in data.get("diff_pair") or []],
            tries=int(data.get("tries") or 0),
            chosen=data.get("chosen"),
        )


def draft_from_dict(data: Mapping[str, Any] | None) -> Draft | None:
    """A Draft from its saved JSON, ignoring fields another version does not know."""
    if data is None:
        return None
    known = {f.name for f in fields(Draft)}
    draft = Draft(**{k: v for k, v in data.items() if k in known})
    draft.examples = [tuple(e) for e in draft.examples]
    if isinstance(draft.checks, dict):
        known_checks = {f.name for f in fields(Checks)}
        draft.checks = Checks(**{k: v for k, v in draft.checks.items() if k in known_checks})
    if isinstance(getattr(draft, "checks", None), Checks):
        # tuples come back from JSON as lists
        draft.checks = Checks(
            **{
                f.name: tuple(v) if isinstance(v := getattr(draft.checks, f.name), list) else v
                for f in fields(Checks)
            }
        )
    draft.optional_fields = tuple(draft.optional_fields or ())  # lists in JSON
    draft.tags = tuple(draft.tags or ())
    draft.tools = tuple(draft.tools or ())
    draft.user_location = tuple(tuple(p) for p in draft.user_location or ())
    return draft


def _variant(data: dict) -> Variant:
    known = {f.name for f in fields(Variant)}
    values = {k: v for k, v in data.items() if k in known}
    values["draft"] = draft_from_dict(values.get("draft")) or Draft()
    values["row_ids"] = [int(r) for r in values.get("row_ids") or []]
    return Variant(**values)


def new_key() -> str:
    return secrets.token_hex(4)


def new_variant(
    kind: Kind,
    label: str,
    draft: Draft,
    *,
    model: str,
    temperature: float | None,
    max_tokens: int | None,
    rows_per_request: int | None = None,
    reasoning_effort: str | None = None,
) -> Variant:
    return Variant(
        key=new_key(),
        label=label,
        kind=kind,
        draft=copy.deepcopy(draft),
        model=model,
        temperature=temperature,
        max_tokens=max_tokens,
        rows_per_request=rows_per_request,
        reasoning_effort=reasoning_effort,
    )


def fingerprint(request_hashes: Sequence[tuple[int, str]]) -> str:
    """One hash for the requests a variant sends for the sample rows: equal when nothing sent would differ."""
    text = json.dumps(sorted((int(r), h) for r, h in request_hashes))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def try_label(number: int) -> str:
    return f"Try {number}"


def example_from(spec: PromptSpec, cells: Mapping[str, Any], answer: str) -> tuple[str, str]:
    """A few-shot example from a liked answer: the row's exact user message, and the answer."""
    messages = templates.render_messages(spec, cells)
    user = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
    return user, answer


def stamp(variant: Variant, run_id: str, fingerprint_: str, row_ids: Sequence[int]) -> None:
    """Record that `variant` was answered by `run_id` over `row_ids`."""
    variant.run_id = run_id
    variant.fingerprint = fingerprint_
    variant.row_ids = [int(r) for r in row_ids]
    variant.tried_at = time.time()
