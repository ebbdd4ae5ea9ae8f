"""Request shapes: the parameters a model takes, as the catalog says and as the server corrects it.

The catalog spells a request for what it knows (`request_params`). What it does not know (a model newer than
this release, an Azure deployment name, a gateway alias) the server says with a 400 naming the parameter:
OpenAI's `param` and `code`, or a gateway's words. `fix_for` turns such a refusal into a `Fixes` change
(rename max_tokens to max_completion_tokens, drop temperature / top_p, the nearest accepted effort, no effort
at all), `Shaper` applies the fixes to every body it sends and remembers them per endpoint and model in the
store, so the rest of the run and every later run send the right shape. A refused request is not billed.

Bodies are planned, hashed and cached in the catalog's shape; fixes apply only when sending. The paid-answer
cache therefore keys an answer by what the user asked for, and a fix learned mid-run changes no row's identity.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from lib.models.catalog import effort_for, model_info, nearest_effort

# Parameters the client may drop when a server refuses them: they tune an answer, they do not define it.
DROPPABLE = frozenset(
    {
        "temperature",
        "top_p",
        "presence_penalty",
        "frequency_penalty",
        "logprobs",
        "top_logprobs",
        "seed",
        "prompt_cache_key",
        "parallel_tool_calls",
    }
)
TOKEN_PARAMS = ("max_tokens", "max_completion_tokens")
EFFORT = "reasoning_effort"
MAX_FIXES_PER_REQUEST = 8  # a server that keeps refusing new things is not converging: stop adjusting


@dataclass(frozen=True)
class Fixes:
    """What servers taught about one model at one endpoint."""

    rename: Mapping[str, str] = field(default_factory=dict)  # parameter -> the name to send instead
    drop: frozenset[str] = frozenset()
    efforts: tuple[str, ...] = ()  # the reasoning_effort values the server listed as accepted
    no_effort: bool = False  # the server refuses reasoning_effort altogether
    reasoning: bool = False  # the server said it is a reasoning model (max_completion_tokens): send an effort
    confirmed: bool = False  # a request in this shape has succeeded
    notes: tuple[str, ...] = ()  # what was adjusted, in words, once each

    def to_json(self) -> dict:
        return {
            "rename": dict(self.rename),
            "drop": sorted(self.drop),
            "efforts": list(self.efforts),
            "no_effort": self.no_effort,
            "reasoning": self.reasoning,
            "confirmed": self.confirmed,
            "notes": list(self.notes),
        }

    @classmethod
    def from_json(cls, data: Mapping | None) -> Fixes:
        if not data:
            return cls()
        return cls(
            rename={str(k): str(v) for k, v in dict(data.get("rename") or {}).items()},
            drop=frozenset(str(p) for p in data.get("drop") or ()),
            efforts=tuple(str(e) for e in data.get("efforts") or ()),
            no_effort=bool(data.get("no_effort")),
            reasoning=bool(data.get("reasoning")),
            confirmed=bool(data.get("confirmed")),
            notes=tuple(str(n) for n in data.get("notes") or ()),
        )

    @property
    def adjusts(self) -> bool:
        return bool(self.rename or self.drop or self.efforts or self.no_effort or self.reasoning)


def request_params(
    model: str, *, max_tokens: int | None, temperature: float | None, effort: str | None = None
) -> dict:
    """The chat.completions parameters for these settings, spelt the way the catalog says this model takes them.

    `effort` is the reasoning effort wished for (None: the catalog's default, "none" where the model takes it);
    a model that does not reason is sent none.
    """
    info = model_info(model)
    params: dict = {"model": model}
    if max_tokens is not None:
        params[info.token_param] = max_tokens
    if temperature is not None and info.supports_temperature:
        params["temperature"] = temperature
    chosen = effort_for(model, effort)
    if chosen is not None:
        params[EFFORT] = chosen
    return params


def apply(body: Mapping, fixes: Fixes, *, wanted_effort: str | None = None) -> dict:
    """The body as this endpoint takes it: renamed and dropped parameters, an accepted effort."""
    if not fixes.adjusts:
        return dict(body)
    out = dict(body)
    for old, new in fixes.rename.items():
        if old in out and new not in out:
            out[new] = out.pop(old)
    for name in fixes.drop:
        out.pop(name, None)
    model = str(out.get("model", ""))
    if fixes.no_effort:
        out.pop(EFFORT, None)
    elif EFFORT in out:
        if fixes.efforts and out[EFFORT] not in fixes.efforts:
            out[EFFORT] = nearest_effort(str(out[EFFORT]), fixes.efforts)
    elif fixes.reasoning:
        chosen = effort_for(model, wanted_effort, fixes.efforts or None)
        if chosen is None:  # a name the catalog does not know: its efforts are unknown until refused
            chosen = wanted_effort if wanted_effort not in (None, "", "auto") else "none"
        out[EFFORT] = chosen
    return out


# --- reading a refusal ---------------------------------------------------------------------------------------

_UNSUPPORTED = re.compile(r"unsupported (parameter|value):\s*'([a-z_]+)'", re.I)
_NOT_SUPPORTED = re.compile(r"'([a-z_]+)' is not supported with this model", re.I)
_UNRECOGNIZED = re.compile(r"unrecognized request arguments? supplied:\s*([a-z_, ]+)", re.I)
_EXTRA_FORBIDDEN = re.compile(r"extra inputs are not permitted.{0,80}?'([a-z_]+)'", re.I | re.S)
_LITELLM_LIST = re.compile(r"does not support parameters?:\s*\[([^\]]*)\]", re.I)
_USE_INSTEAD = re.compile(r"use '(max_completion_tokens|max_tokens)' instead", re.I)
_SUPPORTED_VALUES = re.compile(r"supported values are:?\s*(.+)", re.I)


@dataclass(frozen=True)
class Refusal:
    """What a 400 says about one parameter of the request that was sent."""

    param: str
    kind: str  # "parameter" (not taken at all) or "value" (this value not taken)
    message: str


def refused_params(code: str, param: str, message: str) -> list[Refusal]:
    """The parameters a 400 refuses, from OpenAI's `param` and `code` or, behind a gateway, from its words."""
    found: list[Refusal] = []
    if param and code in ("unsupported_parameter", "unsupported_value", "invalid_parameter"):
        found.append(Refusal(param, "value" if code == "unsupported_value" else "parameter", message))
    for kind, name in _UNSUPPORTED.findall(message):
        found.append(Refusal(name, kind.lower(), message))
    for name in _NOT_SUPPORTED.findall(message):
        found.append(Refusal(name, "parameter", message))
    for names in _UNRECOGNIZED.findall(message):
        found += [Refusal(n.strip(), "parameter", message) for n in names.split(",") if n.strip()]
    for name in _EXTRA_FORBIDDEN.findall(message):
        found.append(Refusal(name, "parameter", message))
    for names in _LITELLM_LIST.findall(message):
        found += [Refusal(n.strip(" '\""), "parameter", message) for n in names.split(",") if n.strip(" '\"")]
    seen: set[tuple[str, str]] = set()
    unique = []
    for r in found:
        if (r.param, r.kind) not in seen:
            seen.add((r.param, r.kind))
            unique.append(r)
    return unique


@dataclass(frozen=True)
class Adjustment:
    fixes: Fixes
    note: str  # in plain words, for the user: what was changed and why


def fix_for(
    status: int,
    code: str,
    param: str,
    message: str,
    sent: Mapping,
    fixes: Fixes,
    *,
    wanted_effort: str | None = None,
) -> Adjustment | None:
    """The fix a refusal calls for (the body as sent, the fixes it was sent with), or None when it is not a
    refused parameter the client may change (then it is an error like any other)."""
    if status not in (400, 422):
        return None
    model = str(sent.get("model", "the model"))
    for refusal in refused_params(code, param, message):
        name = refusal.param
        if name not in sent:
            continue
        new, note = _fix_one(refusal, sent, fixes, model)
        if new is None:
            continue
        if apply(sent, new, wanted_effort=wanted_effort) == dict(sent):
            continue  # it would send the same again: not a fix
        return Adjustment(replace(new, notes=(*new.notes, note)), note)
    return None


def _fix_one(refusal: Refusal, sent: Mapping, fixes: Fixes, model: str) -> tuple[Fixes | None, str]:
    name, words = refusal.param, refusal.message
    if name in TOKEN_PARAMS:
        other = TOKEN_PARAMS[1] if name == TOKEN_PARAMS[0] else TOKEN_PARAMS[0]
        hinted = _USE_INSTEAD.search(words)
        if hinted and hinted.group(1) != other:
            return None, ""
        if refusal.kind == "value" and not hinted:
            return None, ""  # a bad number (below the minimum): a setting to fix, not a parameter to rename
        rename = {**fixes.rename, name: other}
        rename.pop(other, None)
        reasoning = fixes.reasoning or other == "max_completion_tokens"
        return (
            replace(fixes, rename=rename, reasoning=reasoning),
            f"{model} does not take {name}: sent as {other}.",
        )
    if name == EFFORT:
        if refusal.kind == "value":
            listed = _listed_values(words)
            if listed:
                chosen = nearest_effort(str(sent.get(EFFORT)), listed)
                return (
                    replace(fixes, efforts=listed),
                    f"{model} does not take reasoning effort '{sent.get(EFFORT)}': sent with '{chosen}' "
                    f"(it takes {', '.join(listed)}).",
                )
        return (
            replace(fixes, no_effort=True, efforts=()),
            f"{model} does not take a reasoning effort: sent without one.",
        )
    if name in DROPPABLE:
        what = "a temperature" if name == "temperature" else name
        return (
            replace(fixes, drop=fixes.drop | {name}),
            f"{model} does not take {what}: sent without it.",
        )
    return None, ""


def _listed_values(message: str) -> tuple[str, ...]:
    found = _SUPPORTED_VALUES.search(message)
    if not found:
        return ()
    return tuple(dict.fromkeys(re.findall(r"'([A-Za-z0-9_-]+)'", found.group(1))))


# --- the running side ----------------------------------------------------------------------------------------


class Shaper:
    """One endpoint's view of one model's request shape during a run: applies the fixes, learns new ones.

    Until one request in this shape has succeeded, requests go one at a time (`turn`): a model the catalog
    does not know would otherwise have every worker's first request refused for the same parameter.
    """

    def __init__(
        self,
        fixes: Fixes,
        *,
        wanted_effort: str | None = None,
        save: Callable[[Fixes, str | None], None] | None = None,
    ) -> None:
        self._fixes = fixes
        self.wanted_effort = wanted_effort
        self._save = save
        self._lock = threading.Lock()
        self._probe = threading.Lock()
        self._new_notes: list[str] = []

    @property
    def fixes(self) -> Fixes:
        with self._lock:
            return self._fixes

    @property
    def confirmed(self) -> bool:
        return self.fixes.confirmed

    def apply(self, body: Mapping) -> dict:
        return apply(body, self.fixes, wanted_effort=self.wanted_effort)

    def learn(self, status: int, code: str, param: str, message: str, sent: Mapping) -> str | None:
        """Take a refusal to heart: the note saying what changed, or None when it is not a fixable refusal."""
        with self._lock:
            adjustment = fix_for(
                status, code, param, message, sent, self._fixes, wanted_effort=self.wanted_effort
            )
            if adjustment is None:
                return None
            self._fixes = replace(adjustment.fixes, confirmed=False)
            self._new_notes.append(adjustment.note)
            fixes = self._fixes
        self._persist(fixes, adjustment.note)
        return adjustment.note

    def learn_reasoning(self, sent: Mapping, served_effort: str | None) -> str | None:
        """An answer says the model reasoned (the Responses API echoes the effort it ran at) though the
        request carried no effort: it is a reasoning model, so the next requests carry the effort wished
        for. Through Chat Completions a refused max_tokens says so; the Responses API refuses nothing there."""
        if not served_effort or EFFORT in sent:
            return None
        with self._lock:
            if self._fixes.reasoning or self._fixes.no_effort:
                return None
            model = str(sent.get("model", "the model"))
            note = f"{model} reasons (it answered at effort '{served_effort}'): sent with a reasoning effort."
            self._fixes = replace(
                self._fixes, reasoning=True, confirmed=False, notes=(*self._fixes.notes, note)
            )
            self._new_notes.append(note)
            fixes = self._fixes
        self._persist(fixes, note)
        return note

    def confirm(self) -> None:
        with self._lock:
            if self._fixes.confirmed:
                return
            self._fixes = replace(self._fixes, confirmed=True)
            fixes = self._fixes
        self._persist(fixes, None)

    def take_notes(self) -> list[str]:
        """Notes learned since the last call (each said once)."""
        with self._lock:
            notes, self._new_notes = self._new_notes, []
            return notes

    def turn(self, stop: threading.Event) -> bool | None:
        """Wait for this request's turn: False at once when the shape is known; True (hold it; call `done`)
        when this request probes the shape; None when `stop` was set while waiting."""
        while not self.confirmed:
            if self._probe.acquire(timeout=0.2):
                if self.confirmed:
                    self._probe.release()
                    return False
                return True
            if stop.is_set():
                return None
        return False

    def done(self) -> None:
        self._probe.release()

    def _persist(self, fixes: Fixes, note: str | None) -> None:
        if self._save is None:
            return
        try:
            self._save(fixes, note)
        except Exception:  # remembering is an optimisation: a failing disk must not stop the row
            pass


def dumps(fixes: Fixes) -> str:
    return json.dumps(fixes.to_json(), sort_keys=True)
