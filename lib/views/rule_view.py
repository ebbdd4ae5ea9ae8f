"""The Prompt page's "rules and their checks": what the prompt's text states beside what its checks flag,
row by row, so a person sees at once when the two differ (lib.prompts.rules is the logic)."""

from __future__ import annotations

from dataclasses import dataclass

from lib.prompts import rules
from lib.prompts.checks import Checks

IN_STEP = "in step"
DIFFERS = "differs"


@dataclass(frozen=True)
class RulePair:
    rule: str  # "Words", "Characters", "Exclamation marks"
    prompt_says: str
    check_flags: str
    state: str  # IN_STEP | DIFFERS | "" (only the check has it: nothing to compare)


def pairs(text: str, checks: Checks) -> list[RulePair]:
    """One row per rule that the text states or the check counts (words, characters, exclamation marks)."""
    said = rules.stated(text)
    out: list[RulePair] = []
    for rule, label, unit in (("max_words", "Words", "words"), ("max_chars", "Characters", "characters")):
        stated, checked = getattr(said, rule), getattr(checks, rule)
        if stated is None and checked is None:
            continue
        prompt_says = f"at most {stated:,} {unit}" if stated is not None else "states no limit"
        check_flags = f"answers over {checked:,} {unit}" if checked is not None else "does not count them"
        state = "" if stated is None else (IN_STEP if stated == checked else DIFFERS)
        out.append(RulePair(label, prompt_says, check_flags, state))
    banned = rules.EXCLAMATION in checks.banned
    if said.no_exclamation or banned:
        out.append(
            RulePair(
                "Exclamation marks",
                "none" if said.no_exclamation else "states no rule",
                "any '!'" if banned else "does not look for them",
                (IN_STEP if banned else DIFFERS) if said.no_exclamation else "",
            )
        )
    return out


def table(rows: list[RulePair]) -> list[dict[str, str]]:
    """The pairs as rows of a small table."""
    return [
        {"rule": p.rule, "the prompt says": p.prompt_says, "the check flags": p.check_flags, "": p.state}
        for p in rows
    ]
