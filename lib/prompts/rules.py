"""A rule a prompt states in words and the check that flags it, kept as one value.

A prompt says "One sentence, at most 25 words" and its checks say `max_words: 25`. When a person edits the
sentence to "at most 18 words", the check must follow or the flags lie ("allows at most 25"). `stated`
reads the limits a prompt's text states (words, characters, exclamation marks); `follow` moves a check
that was in step with the old text to the new one and says so; `differences` names the rules that the
text and the checks state differently, for the page to show with a one-click fix (`aligned`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from lib.prompts.checks import Checks

EXCLAMATION = "!"
_NUMBER_WORDS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "twelve": 12,
    "fifteen": 15,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "hundred": 100,
}
_NUM = r"(\d{1,5}|" + "|".join(_NUMBER_WORDS) + r")"
_UPTO = (
    r"(?:at most|no more than|not more than|maximum(?: of)?|max\.?|up to|under|fewer than|less than|within)"
)
_WORDS = re.compile(rf"\b{_UPTO}\s+{_NUM}\s+words?\b", re.I)
_WORDS_AFTER = re.compile(rf"\b{_NUM}\s+words?\s+(?:at most|or (?:fewer|less)|max(?:imum)?)\b", re.I)
_CHARS = re.compile(rf"\b{_UPTO}\s+{_NUM}\s+(?:characters?|chars?)\b", re.I)
_NO_EXCLAMATION = re.compile(r"\bno exclamation (?:marks?|points?)\b|\bnever use exclamation", re.I)


@dataclass(frozen=True)
class Stated:
    """The limits a prompt's text states (None / False: it states none)."""

    max_words: int | None = None
    max_chars: int | None = None
    no_exclamation: bool = False


def _number(text: str) -> int:
    return int(text) if text.isdigit() else _NUMBER_WORDS[text.lower()]


def _smallest(pattern: re.Pattern[str], text: str) -> int | None:
    """The tightest limit stated (a prompt may say 25 words in one place and 20 in an example rule)."""
    found = []
    for match in pattern.finditer(text):
        value = _number(match.group(1))
        if match.group(0).lower().startswith(("under", "fewer than", "less than")):
            value -= 1
        if value >= 1:
            found.append(value)
    return min(found) if found else None


def stated(text: str) -> Stated:
    """The limits stated in a prompt's instructions (its system message and template, joined)."""
    words = [w for w in (_smallest(_WORDS, text), _smallest(_WORDS_AFTER, text)) if w is not None]
    return Stated(
        max_words=min(words) if words else None,
        max_chars=_smallest(_CHARS, text),
        no_exclamation=bool(_NO_EXCLAMATION.search(text)),
    )


@dataclass(frozen=True)
class Difference:
    rule: str  # max_words | max_chars | no_exclamation
    text_says: str
    check_says: str

    def words(self) -> str:
        return f"The prompt says {self.text_says}; its check {self.check_says}."


def differences(text: str, checks: Checks) -> list[Difference]:
    """Rules the prompt's text states that its checks state differently (or not at all)."""
    said = stated(text)
    out = []
    if said.max_words is not None and checks.max_words != said.max_words:
        out.append(
            Difference(
                "max_words",
                f"at most {said.max_words} words",
                f"allows {checks.max_words}" if checks.max_words else "does not count words",
            )
        )
    if said.max_chars is not None and checks.max_chars != said.max_chars:
        out.append(
            Difference(
                "max_chars",
                f"at most {said.max_chars} characters",
                f"allows {checks.max_chars}" if checks.max_chars else "does not count characters",
            )
        )
    if said.no_exclamation and EXCLAMATION not in checks.banned:
        out.append(Difference("no_exclamation", "no exclamation marks", "does not look for them"))
    return out


def aligned(text: str, checks: Checks) -> Checks:
    """The checks with every rule the text states taken from the text."""
    said = stated(text)
    new = checks
    if said.max_words is not None:
        new = replace(new, max_words=said.max_words)
    if said.max_chars is not None:
        new = replace(new, max_chars=said.max_chars)
    if said.no_exclamation and EXCLAMATION not in new.banned:
        new = replace(new, banned=(*new.banned, EXCLAMATION))
    return new


def follow(old_text: str, new_text: str, checks: Checks) -> tuple[Checks, list[str]]:
    """A text edit's effect on the checks: a check in step with the old text follows the new one.

    Returns the checks and what changed, in words. A check the person set apart from the text (it already
    differed) is left alone: `differences` then shows it.
    """
    before, after = stated(old_text), stated(new_text)
    notes: list[str] = []
    new = checks
    for rule, unit in (("max_words", "words"), ("max_chars", "characters")):
        old_value, new_value = getattr(before, rule), getattr(after, rule)
        if new_value is None or new_value == old_value or getattr(checks, rule) != old_value:
            continue
        if old_value is None and getattr(checks, rule) is not None:
            continue
        new = replace(new, **{rule: new_value})
        notes.append(
            f"The check now flags answers over {new_value} {unit}, as the prompt says"
            + (f" (it allowed {old_value})." if old_value else ".")
        )
    if after.no_exclamation and not before.no_exclamation and EXCLAMATION not in new.banned:
        new = replace(new, banned=(*new.banned, EXCLAMATION))
        notes.append("The check now flags exclamation marks, as the prompt says.")
    return new, notes
