"""What the simulator answers: deterministic replies and schema-shaped JSON derived from the request, token counts.

Everything here is a pure function of the request, so a test can compute the answer a row should get.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from lib.cost import tokens
from lib.prompts import packing

DIRECTIVE_RE = re.compile(r"\[\[sim:([a-z_0-9]+)(?:=(\d+))?\]\]")
_WORD_RE = re.compile(r"[^\W_][\w'&.-]*")
_FILLER = (
    "lead",
    "account",
    "prospect",
    "fit",
    "signal",
    "pipeline",
    "growth",
    "team",
    "market",
    "outreach",
    "priority",
    "budget",
)
REFUSAL_TEXT = "I'm sorry, but I can't help with that request."
_MAX_CACHED_TEXT = 4096  # longer texts are counted every time rather than pinned in the cache


def message_text(message: dict) -> str:
    return tokens._text_of(message)


def last_user_text(messages: Sequence[dict]) -> str:
    """The last user message's text (the row's data, in a lead prompt); the last message if no user spoke."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return message_text(message)
    return message_text(messages[-1]) if messages else ""


def directives(messages: Sequence[dict]) -> dict[str, int | None]:
    """`[[sim:NAME]]` / `[[sim:NAME=N]]` markers anywhere in the messages, as {name: N or None}."""
    found: dict[str, int | None] = {}
    for message in messages:
        text = message_text(message)
        if "[[sim:" in text:
            for name, value in DIRECTIVE_RE.findall(text):
                found[name] = int(value) if value else None
    return found


def reply_tag(messages: Sequence[dict]) -> str:
    """8 hex digits of sha256 of the last user message: proves which row an answer belongs to."""
    return hashlib.sha256(last_user_text(messages).encode("utf-8", "surrogatepass")).hexdigest()[:8]


def _rng(messages: Sequence[dict], model: str, salt: str = "") -> random.Random:
    seed = hashlib.sha256(
        f"{model}\0{salt}\0{last_user_text(messages)}".encode("utf-8", "surrogatepass")
    ).digest()
    return random.Random(int.from_bytes(seed[:16], "big"))


def _words(text: str) -> list[str]:
    words = [w.rstrip(".-'") for w in _WORD_RE.findall(DIRECTIVE_RE.sub(" ", text))]
    return [w for w in words if w] or list(_FILLER)


def prompt_salt(messages: Sequence[dict], temperature: Any = None) -> str:
    """What a request's answer depends on besides its row: the system message (without the packing
    instruction, so a packed row answers as it would alone), the example turns and the temperature."""
    system = ""
    if messages and messages[0].get("role") == "system":
        system = message_text(messages[0]).removesuffix(f"\n\n{packing.INSTRUCTION}")
    turns = [message_text(m) for m in messages[1:-1]]
    text = "\0".join([system, *turns, repr(temperature)])
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def expected_reply(messages: list[dict], model: str) -> str:
    """The reply the simulator gives this request in text mode: `SIM[tag] words of the last user message.`"""
    text = last_user_text(messages)
    rng = _rng(messages, model)
    words = _words(text)
    # 5-40 words plus the tag: roughly 10-60 tokens, varying from row to row.
    chosen = [
        rng.choice(words) if rng.random() < 0.7 else rng.choice(_FILLER) for _ in range(rng.randint(5, 40))
    ]
    chosen[0] = chosen[0][:1].upper() + chosen[0][1:]
    return f"SIM[{reply_tag(messages)}] {' '.join(chosen)}."


# Answer defects the quality checks must catch (lib/prompts/checks.py), given on purpose at SimConfig.p_defect.
DEFECTS = ("placeholder", "too_long", "banned_phrase", "missing_mention", "repeated_opener")
DEFECT_PLACEHOLDER = "Hi {{First Name}}, a note for [Company Name]."
DEFECT_PHRASE = "I hope this email finds you well"  # the shipped icebreaker bans it
DEFECT_OPENER = "As a leader in"
DEFECT_EXTRA_WORDS = 60  # a too-long answer: this many filler words more than a clean one
_DATA_RE = re.compile(r"<data>(.*?)</data>", re.DOTALL)


def _row_view(messages: Sequence[dict]) -> list[dict]:
    """A follow-up turn ("write it again") joined to the row's data turn, so each row's answer stays its own."""
    last = last_user_text(messages)
    if _DATA_RE.search(last):
        return list(messages)
    for message in reversed(messages):
        if message.get("role") == "user" and _DATA_RE.search(message_text(message)):
            return [{"role": "user", "content": message_text(message) + "\n\n" + last}]
    return list(messages)


def chosen_defect(messages: Sequence[dict], model: str, p_defect: float, kinds: Sequence[str]) -> str | None:
    """The defect this request's answer gets (None: a clean answer), a pure function a test can call."""
    if p_defect <= 0 or not kinds:
        return None
    rng = _rng(_row_view(messages), model, "defect")
    if rng.random() >= p_defect:
        return None
    return rng.choice(list(kinds))


def mentioned_value(messages: Sequence[dict]) -> str:
    """The first non-empty <data> value of the last user turn holding lead data (what a clean answer names)."""
    for message in reversed(messages):
        if message.get("role") == "user":
            values = [v.strip() for v in _DATA_RE.findall(message_text(message)) if v.strip()]
            if values:
                return values[0]
    return ""


def defect_reply(messages: list[dict], model: str, defect: str | None) -> str:
    """A text answer in defect mode: a clean one names the lead's first value; a defect breaks one rule.

    Clean: `SIM[tag] words. About VALUE.`; placeholder adds DEFECT_PLACEHOLDER; too_long adds
    DEFECT_EXTRA_WORDS filler words; banned_phrase puts DEFECT_PHRASE after the tag; missing_mention uses filler
    words only and leaves the value out; repeated_opener starts with DEFECT_OPENER (every such answer alike).
    """
    view = _row_view(messages)
    base = expected_reply(view, model)
    value = mentioned_value(messages)
    about = f" About {value}." if value else ""
    rng = _rng(view, model, "defect-words")
    if defect == "missing_mention":
        words = " ".join(rng.choice(_FILLER) for _ in range(rng.randint(5, 20)))
        return f"SIM[{reply_tag(view)}] {words.capitalize()}."
    if defect == "placeholder":
        return f"{base} {DEFECT_PLACEHOLDER}{about}"
    if defect == "too_long":
        words = " ".join(rng.choice(_FILLER) for _ in range(DEFECT_EXTRA_WORDS))
        return f"{base} {words.capitalize()}.{about}"
    if defect == "banned_phrase":  # after the row's tag, so that these answers do not also open alike
        tag, words = base.split(" ", 1)
        return f"{tag} {DEFECT_PHRASE}, {words}{about}"
    if defect == "repeated_opener":
        return f"{DEFECT_OPENER} {base}{about}"
    return base + about


# Hidden reasoning per effort, as a multiple of the medium draw (64-512 tokens): at medium a short cap of 80
# is spent on thinking 7 times in 8 (an empty answer, finish_reason "length"), and cut short otherwise.
EFFORT_SCALE = {
    "none": 0.0,
    "minimal": 1 / 16,
    "low": 0.25,
    "medium": 1.0,
    "high": 2.5,
    "xhigh": 5.0,
    "max": 10.0,
}


def reasoning_tokens(messages: Sequence[dict], model: str, effort: str | None) -> int:
    """Hidden reasoning tokens a reasoning model spends on this request at `effort` (None: medium).

    Medium draws 64, 128, ... 512 from the row (so the same row thinks as long at every effort, scaled by
    EFFORT_SCALE); none spends 0.
    """
    base = 64 * (1 + _rng(messages, model, "reasoning").randrange(8))
    return int(base * EFFORT_SCALE.get(effort or "medium", 1.0))


def expected_json(messages: list[dict], model: str, schema: dict | None) -> Any:
    """The JSON value the simulator returns for this request and JSON schema (an object when no schema)."""
    rng = _rng(messages, model, "json")
    words = _words(last_user_text(messages))
    if not schema:
        return {"reply": expected_reply(messages, model), "tag": reply_tag(messages)}
    return _SchemaFaker(schema, rng, words).value(schema, 0)


class _SchemaFaker:
    """Builds a value conforming to a (structured-outputs subset of) JSON Schema, choices drawn from `rng`."""

    def __init__(self, root: dict, rng: random.Random, words: list[str]) -> None:
        self.root = root
        self.rng = rng
        self.words = words

    def value(self, schema: Any, depth: int) -> Any:
        if not isinstance(schema, dict) or depth > 8:
            return None
        if "$ref" in schema:
            return self.value(self._resolve(schema["$ref"]), depth + 1)
        if "const" in schema:
            return schema["const"]
        if schema.get("enum"):
            return self.rng.choice(schema["enum"])
        for key in ("anyOf", "oneOf"):
            if schema.get(key):
                options = [s for s in schema[key] if not (isinstance(s, dict) and s.get("type") == "null")]
                return self.value((options or schema[key])[0], depth + 1)
        if schema.get("allOf"):
            merged: dict = {}
            for part in schema["allOf"]:
                merged.update(self._resolve(part["$ref"]) if "$ref" in part else part)
            return self.value(merged, depth + 1)
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if kind is None:
            kind = "object" if "properties" in schema else "string"
        return getattr(self, f"_{kind}", self._null)(schema, depth)

    def _resolve(self, ref: str) -> dict:
        node: Any = self.root
        for part in ref.lstrip("#/").split("/"):
            if part:
                node = (
                    node.get(part.replace("~1", "/").replace("~0", "~"), {}) if isinstance(node, dict) else {}
                )
        return node if isinstance(node, dict) else {}

    def _object(self, schema: dict, depth: int) -> dict:
        props = schema.get("properties") or {}
        return {name: self.value(sub, depth + 1) for name, sub in props.items()}

    def _array(self, schema: dict, depth: int) -> list:
        low = int(schema.get("minItems", 1))
        high = max(low, min(int(schema.get("maxItems", 3)), low + 2))
        return [self.value(schema.get("items", {}), depth + 1) for _ in range(self.rng.randint(low, high))]

    def _string(self, schema: dict, depth: int) -> str:
        fmt = schema.get("format")
        word = self.rng.choice(self.words)
        if fmt == "email":
            return f"{re.sub(r'[^a-z0-9]', '', word.lower()) or 'lead'}@example.com"
        if fmt in ("date", "date-time"):
            day = dt.date(2026, 1, 1) + dt.timedelta(days=self.rng.randrange(365))
            return day.isoformat() if fmt == "date" else f"{day.isoformat()}T12:00:00Z"
        if fmt in ("uri", "url"):
            return f"https://example.com/{re.sub(r'[^A-Za-z0-9-]', '', word) or 'lead'}"
        text = " ".join(self.rng.choice(self.words) for _ in range(self.rng.randint(1, 4)))
        low, high = int(schema.get("minLength", 0)), schema.get("maxLength")
        text = text.ljust(low, "x")
        return text[: int(high)] if high is not None else text

    def _number(self, schema: dict, depth: int) -> float:
        low, high = self._bounds(schema, 0.0, 1000.0)
        return round(low + (high - low) * self.rng.random(), 2) if high > low else low

    def _integer(self, schema: dict, depth: int) -> int:
        low, high = self._bounds(schema, 0, 100)
        return self.rng.randint(int(low), int(high)) if int(high) >= int(low) else int(low)

    def _bounds(self, schema: dict, low: float, high: float) -> tuple[float, float]:
        # Exclusive bounds are nudged by one unit: fine for the integers and 2-decimal numbers made here.
        if "minimum" in schema:
            low = schema["minimum"]
        elif "exclusiveMinimum" in schema:
            low = schema["exclusiveMinimum"] + 1
        if "maximum" in schema:
            high = schema["maximum"]
        elif "exclusiveMaximum" in schema:
            high = schema["exclusiveMaximum"] - 1
        return low, max(low, high)

    def _boolean(self, schema: dict, depth: int) -> bool:
        return self.rng.random() < 0.5

    def _null(self, schema: dict, depth: int) -> None:
        return None


def is_packed(response_format: Any) -> bool:
    """A packed request (lib.prompts.packing): several rows, answered as {"items": [{"id", "answer"}]}."""
    if not isinstance(response_format, dict) or response_format.get("type") != "json_schema":
        return False
    spec = response_format.get("json_schema")
    return isinstance(spec, dict) and spec.get("name") == packing.SCHEMA_NAME


def packed_items(messages: list[dict], model: str, response_format: dict) -> list[dict]:
    """Each fenced item answered exactly as the same row sent alone would be (its text as the last user turn)."""
    schema = response_format["json_schema"].get("schema") or {}
    answer = ((schema.get("properties") or {}).get("items") or {}).get("items", {}).get("properties", {})
    answer_schema = answer.get("answer") or {"type": "string"}
    out = []
    for item_id, text in packing.ITEM_RE.findall(last_user_text(messages)):
        alone = [*messages[:-1], {"role": "user", "content": text}]
        if answer_schema.get("type") == "string":
            value: Any = expected_reply(alone, model)
        else:
            value = expected_json(alone, model, answer_schema)
        out.append({"id": item_id, "answer": value})
    return out


def mangle_packed(content: str, rng: random.Random, config: Any) -> str:
    """Drop, repeat or mangle items' ids at the configured rates (a model that loses track of items)."""
    items = json.loads(content)["items"]
    out = []
    for item in items:
        u = rng.random()
        if u < config.p_pack_drop:
            continue
        u -= config.p_pack_drop
        if u < config.p_pack_repeat:
            out += [item, {"id": item["id"], "answer": item["answer"]}]
            continue
        u -= config.p_pack_repeat
        if u < config.p_pack_mangle:
            out.append({**item, "id": f"{item['id'].upper()}_"})
            continue
        out.append(item)
    return json.dumps({"items": out}, ensure_ascii=False)


def response_content(
    messages: list[dict],
    model: str,
    response_format: Any,
    p_defect: float = 0.0,
    defects: Sequence[str] = DEFECTS,
) -> str:
    """The assistant content for this request: text, or JSON when a json_schema / json_object format is asked.

    With `p_defect` > 0 a text answer is in defect mode (see defect_reply); JSON answers never are.
    """
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if is_packed(response_format):
        return json.dumps({"items": packed_items(messages, model, response_format)}, ensure_ascii=False)
    if kind == "json_schema":
        spec = response_format.get("json_schema") or {}
        schema = spec.get("schema") if isinstance(spec, dict) else None
        return json.dumps(expected_json(messages, model, schema or {"type": "object"}), ensure_ascii=False)
    if kind == "json_object":
        return json.dumps(expected_json(messages, model, None), ensure_ascii=False)
    if p_defect > 0:
        return defect_reply(messages, model, chosen_defect(messages, model, p_defect, defects))
    return expected_reply(messages, model)


@lru_cache(maxsize=8192)
def _count_cached(text: str, model: str) -> int:
    return tokens.count_text(text, model).tokens


def _count(text: str, model: str) -> int:
    if len(text) <= _MAX_CACHED_TEXT:
        return _count_cached(text, model)
    return tokens.count_text(text, model).tokens


def prompt_tokens(messages: Sequence[dict], model: str) -> int:
    """Exactly `tokens.count_messages(messages, model).tokens` (a test pins this), without its per-call thread pool.

    count_messages goes through tiktoken's encode_ordinary_batch, which starts a ThreadPoolExecutor per
    call (about 0.6 ms); here each text is encoded directly and repeated ones (system prompts) are cached.
    """
    total = tokens.REPLY_PRIMING
    for message in messages:
        total += _count(message_text(message), model) + _count(message["role"], model)
        total += tokens._message_overhead(message)
    return total


def completion_tokens(text: str, model: str) -> int:
    return tokens.count_text(text, model).tokens


def truncate_to_tokens(text: str, limit: int, model: str) -> str:
    """The first `limit` tokens of `text`, decoded with the model's encoding (the same one count_text uses)."""
    name = tokens.encoding_name_for(model)
    enc = (tokens.get_encoding(name) if name else None) or tokens.get_encoding("o200k_base")
    if enc is None:
        return text[: int(limit * tokens.CHARS_PER_TOKEN)]
    return enc.decode(enc.encode_ordinary(text)[:limit])
