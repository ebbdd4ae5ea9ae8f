"""Quality checks of answers against a prompt's `checks`: flags that point a reader at the wrong answers.

A check never fails a row: the answer is kept, its row gains a `quality:*` flag and a plain sentence
saying which rule broke and where. Per answer (`check_answer`): left-over placeholders (always on),
too many words or characters, banned phrases, a column's value not mentioned; and (`check_sources`) no
cited page when a web research prompt asks for sources (`require_sources`). Over a list of answers
(`repeated_openers`): the same first three words on more than a set share of the answers.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

PLACEHOLDER = "quality:placeholder"
TOO_LONG = "quality:too_long"
BANNED = "quality:banned_phrase"
MISSING_MENTION = "quality:missing_mention"
REPEATED_OPENER = "quality:repeated_opener"
NO_SOURCE = "quality:no_source"  # web research asked for sources and the answer cites none
FLAGS = (PLACEHOLDER, TOO_LONG, BANNED, MISSING_MENTION, REPEATED_OPENER, NO_SOURCE)
QUALITY = "quality:"
# A flag a reviewer accepted: "accepted:too_long" says which rule the kept answer breaks, and no longer
# counts as flagged anywhere (counts, the review queue, regenerate), since nothing reads it as "quality:".
ACCEPTED = "accepted:"

OPENER_WORDS = 3
DEFAULT_OPENER_SHARE = 0.25  # a quarter of the list opening alike reads as a mail merge
OPENER_MIN_ROWS = 3  # fewer answers sharing an opener is a coincidence, not a pattern

# Words that make a bracketed text a template's blank rather than prose: "[Company Name]", "<first name>".
PLACEHOLDER_WORDS = frozenset(
    [
        "name",
        "first",
        "last",
        "full",
        "company",
        "organisation",
        "organization",
        "business",
        "firm",
        "title",
        "job",
        "role",
        "position",
        "industry",
        "sector",
        "city",
        "town",
        "location",
        "country",
        "region",
        "your",
        "their",
        "prospect",
        "recipient",
        "contact",
        "lead",
        "product",
        "service",
        "insert",
        "here",
        "placeholder",
        "website",
        "url",
        "email",
        "phone",
        "date",
        "number",
        "x",
        "xx",
        "xxx",
    ]
)
_MUSTACHE = re.compile(r"\{\{[^{}\n]*\}\}|\{[A-Za-z_][A-Za-z0-9_ ]{0,40}\}")
_BRACKETED = re.compile(r"\[([A-Za-z_][A-Za-z_ .'-]{0,40})\]|<([A-Za-z_][A-Za-z_ .'-]{0,40})>")
# Legal-form words a company's name is written without in an answer ("Acme", not "ACME Holdings, Inc.").
_LEGAL_WORDS = frozenset(
    [
        "inc",
        "incorporated",
        "llc",
        "ltd",
        "limited",
        "plc",
        "corp",
        "corporation",
        "co",
        "company",
        "gmbh",
        "ag",
        "sa",
        "sas",
        "bv",
        "nv",
        "oy",
        "ab",
        "holdings",
        "group",
    ]
)


class ChecksError(ValueError):
    """A `checks` section that cannot work; the message names the field."""


@dataclass(frozen=True)
class Checks:
    """A prompt's checks. Placeholders are always checked; everything else is off until set."""

    max_words: int | None = None
    max_chars: int | None = None
    banned: tuple[str, ...] = ()
    mention: tuple[str, ...] = ()  # columns whose value the answer must mention
    max_opener_share: float = DEFAULT_OPENER_SHARE
    require_sources: bool = False  # web research: an answer that cites no page is flagged no_source

    def __post_init__(self) -> None:
        object.__setattr__(self, "banned", tuple(dict.fromkeys(self.banned)))
        object.__setattr__(self, "mention", tuple(dict.fromkeys(self.mention)))

    def merged(
        self,
        *,
        max_words: int | None = None,
        max_chars: int | None = None,
        banned: Sequence[str] = (),
        mention: Sequence[str] = (),
    ) -> Checks:
        """These checks with more on top (the command line's): a limit given replaces the file's."""
        return replace(
            self,
            max_words=max_words if max_words is not None else self.max_words,
            max_chars=max_chars if max_chars is not None else self.max_chars,
            banned=(*self.banned, *banned),
            mention=(*self.mention, *mention),
        )


@dataclass(frozen=True)
class Finding:
    flag: str
    message: str


# ------------------------------------------------------------------------------------------- YAML section


def from_mapping(data: object, source: str = "prompt") -> Checks:
    """The `checks:` section of a prompt file; errors name the file and the field."""
    if data is None:
        return Checks()
    if not isinstance(data, dict):
        raise ChecksError(f"{source}: field 'checks' must be a mapping such as 'max_words: 25'")
    known = (
        "max_words",
        "max_chars",
        "banned_phrases",
        "must_mention",
        "max_opener_share",
        "require_sources",
    )
    for key in data:
        if key not in known:
            raise ChecksError(f"{source}: 'checks.{key}' is not a check (known: {', '.join(known)})")

    def whole(key: str) -> int | None:
        value = data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ChecksError(f"{source}: 'checks.{key}' must be a whole number of at least 1, not {value!r}")
        return value

    def texts(key: str) -> tuple[str, ...]:
        value = data.get(key) or []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise ChecksError(f"{source}: 'checks.{key}' must be a list of non-empty texts")
        return tuple(v.strip() for v in value)

    share = data.get("max_opener_share", DEFAULT_OPENER_SHARE)
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share <= 1:
        raise ChecksError(f"{source}: 'checks.max_opener_share' must be a share above 0 and at most 1")
    sources = data.get("require_sources", False)
    if not isinstance(sources, bool):
        raise ChecksError(f"{source}: 'checks.require_sources' must be true or false, not {sources!r}")
    return Checks(
        whole("max_words"), whole("max_chars"), texts("banned_phrases"), texts("must_mention"), share, sources
    )


def to_mapping(checks: Checks) -> dict:
    """The `checks:` section as written to a prompt file (only what is set); {} for the defaults."""
    data: dict = {}
    if checks.max_words is not None:
        data["max_words"] = checks.max_words
    if checks.max_chars is not None:
        data["max_chars"] = checks.max_chars
    if checks.banned:
        data["banned_phrases"] = list(checks.banned)
    if checks.mention:
        data["must_mention"] = list(checks.mention)
    if checks.max_opener_share != DEFAULT_OPENER_SHARE:
        data["max_opener_share"] = checks.max_opener_share
    if checks.require_sources:
        data["require_sources"] = True
    return data


# ---------------------------------------------------------------------------------------------- per answer


def _fold(text: str) -> str:
    """Case, accents' compatibility forms, curly quotes and runs of spaces made alike, for matching."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    return re.sub(r"\s+", " ", text)


def _quote(text: str, limit: int = 60) -> str:
    text = text.strip()
    return f"'{text[:limit]}…'" if len(text) > limit else f"'{text}'"


def _word_number(text: str, position: int) -> int:
    return len(text[:position].split()) + 1


def placeholders_left(text: str) -> list[str]:
    """Template blanks still in an answer: {{…}}, {first_name}, [Company Name], <first name>."""
    found = [m.group(0) for m in _MUSTACHE.finditer(text)]
    for match in _BRACKETED.finditer(text):
        inner = match.group(1) or match.group(2)
        words = re.split(r"[\s_.'-]+", inner.casefold())
        if 0 < len(words) <= 4 and any(w in PLACEHOLDER_WORDS for w in words):
            found.append(match.group(0))
    return found


def _phrase_pattern(phrase: str) -> re.Pattern[str]:
    """The whole phrase, any case and spacing, not inside a longer word ("amazing" is not in "amazingly")."""
    folded = _fold(phrase).split()
    words = [re.escape(w) for w in folded]
    # Word edges only where the phrase has a word's edge: "!" or "?!" are found right after a word.
    start = r"(?<!\w)" if folded and re.match(r"\w", folded[0]) else ""
    end = r"(?!\w)" if folded and re.search(r"\w$", folded[-1]) else ""
    return re.compile(start + r"\s+".join(words) + end)


def _cell_spans(folded: str, row: Mapping[str, str]) -> list[tuple[int, int]]:
    """Where the lead's own values appear in the answer: a banned word inside a company's name is fine."""
    spans = []
    for value in row.values():
        value = _fold(str(value or "")).strip()
        if len(value) >= 3:
            spans += [(m.start(), m.end()) for m in re.finditer(re.escape(value), folded)]
    return spans


def _core_name(value: str) -> str:
    """A value as an answer would say it: folded, punctuation gone, legal forms ("Inc.", "GmbH") dropped."""
    words = re.sub(r"[^\w\s&]", " ", _fold(value)).split()
    kept = [w for w in words if w not in _LEGAL_WORDS]
    return " ".join(kept or words)


def check_answer(
    checks: Checks, text: str, row: Mapping[str, str] | None = None, where: str = ""
) -> list[Finding]:
    """What is wrong with one answer (`text`) for its lead (`row`); `where` names the output column."""
    row = row or {}
    at = f"In '{where}': " if where else ""
    findings: list[Finding] = []
    left = placeholders_left(text)
    if left:
        names = ", ".join(_quote(p) for p in dict.fromkeys(left))
        first = text.find(left[0])
        findings.append(
            Finding(
                PLACEHOLDER,
                f"{at}a template placeholder is left in the answer: {names} (word {_word_number(text, first)}).",
            )
        )
    words = len(text.split())
    if checks.max_words is not None and words > checks.max_words:
        findings.append(
            Finding(
                TOO_LONG, f"{at}the answer has {words} words; the prompt allows at most {checks.max_words}."
            )
        )
    if checks.max_chars is not None and len(text.strip()) > checks.max_chars:
        findings.append(
            Finding(
                TOO_LONG,
                f"{at}the answer has {len(text.strip())} characters; the prompt allows at most "
                f"{checks.max_chars}.",
            )
        )
    folded = _fold(text)
    spans = _cell_spans(folded, row) if checks.banned else []
    hits = []
    for phrase in checks.banned:
        for match in _phrase_pattern(phrase).finditer(folded):
            if not any(s <= match.start() and match.end() <= e for s, e in spans):
                hits.append((match.start(), phrase))
                break
    if hits:
        hits.sort()
        listed = ", ".join(_quote(p) for _, p in hits)
        findings.append(
            Finding(
                BANNED,
                f"{at}the answer uses a banned phrase: {listed} (word {_word_number(folded, hits[0][0])}).",
            )
        )
    plain = " " + " ".join(re.sub(r"[^\w\s&]", " ", folded).split()) + " "
    for column in checks.mention:
        value = str(row.get(column, "") or "").strip()
        core = _core_name(value)
        if core and f" {core} " not in plain:
            findings.append(
                Finding(MISSING_MENTION, f"{at}the answer does not mention {column} ({_quote(value)}).")
            )
    return [Finding(f.flag, f.message[0].upper() + f.message[1:]) for f in findings]


def check_sources(checks: Checks, sources: Sequence[object]) -> list[Finding]:
    """An answer that cites no page, when the prompt asks for sources (web research)."""
    if not checks.require_sources or sources:
        return []
    return [
        Finding(
            NO_SOURCE,
            "The answer cites no source: the web search found nothing it could point to, so check it by hand.",
        )
    ]


# --------------------------------------------------------------------------------------------- over a list


def accepted_flag(flag: str) -> str:
    """'quality:too_long' -> 'accepted:too_long'; any other flag as it is."""
    return ACCEPTED + flag.removeprefix(QUALITY) if flag.startswith(QUALITY) else flag


@functools.lru_cache(maxsize=65_536)  # the live panel asks again for the same answers twice a second
def opener(text: str, words: int = OPENER_WORDS) -> str | None:
    """An answer's first words, folded and without punctuation; None when it is shorter than that."""
    found = re.sub(r"[^\w\s']", " ", _fold(text)).split()
    return " ".join(found[:words]) if len(found) >= words else None


def repeated_openers(
    answers: Mapping[int, str], max_share: float = DEFAULT_OPENER_SHARE, min_rows: int = OPENER_MIN_ROWS
) -> dict[int, Finding]:
    """Rows whose answer opens like more than `max_share` of all answers (and at least `min_rows` of them)."""
    openers = {row_id: opener(text) for row_id, text in answers.items()}
    counts = Counter(o for o in openers.values() if o is not None)
    total = len(answers)
    repeated = {o: n for o, n in counts.items() if n >= min_rows and total and n / total > max_share}
    return {
        row_id: Finding(
            REPEATED_OPENER,
            f"{repeated[o]} of {total} answers ({repeated[o] / total:.0%}) start with '{o}'; at most "
            f"{max_share:.0%} may open alike.",
        )
        for row_id, o in openers.items()
        if o in repeated
    }


def count_flags(flag_lists: Sequence[Sequence[str]]) -> dict[str, int]:
    """{quality check: rows flagged by it}, e.g. {"too_long": 3}; each row counted once per check."""
    counts: Counter[str] = Counter()
    for flags in flag_lists:
        for flag in set(flags):
            if flag.startswith("quality:"):
                counts[flag.removeprefix("quality:")] += 1
    return dict(sorted(counts.items()))
