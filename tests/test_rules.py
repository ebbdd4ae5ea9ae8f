"""A prompt's stated rules and its checks as one value (lib.prompts.rules), as tables."""

from __future__ import annotations

import pytest

from lib.prompts import library, rules
from lib.prompts.checks import Checks


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("One sentence, at most 25 words, plain English.", rules.Stated(max_words=25)),
        ("Keep it under 20 words.", rules.Stated(max_words=19)),
        ("No more than twelve words; at most 25 words in total.", rules.Stated(max_words=12)),
        ("Answer in 15 words or fewer.", rules.Stated(max_words=15)),
        ("At most 140 characters. No exclamation marks.", rules.Stated(max_chars=140, no_exclamation=True)),
        ("Write about the company's 40 employees.", rules.Stated()),  # a number, not a limit
        ("Use at most 3 sentences.", rules.Stated()),
    ],
)
def test_stated_limits(text, expected):
    assert rules.stated(text) == expected


@pytest.mark.parametrize(
    ("old", "new", "checks", "expected", "said"),
    [
        # in step with the text: the check follows it
        ("at most 25 words", "at most 18 words", Checks(max_words=25), Checks(max_words=18), "over 18 words"),
        # set apart by the person: left alone (differences shows it)
        ("at most 25 words", "at most 18 words", Checks(max_words=30), Checks(max_words=30), None),
        # a new limit where the check counted nothing: the check starts counting
        ("plain English", "at most 18 words", Checks(), Checks(max_words=18), "over 18 words"),
        ("at most 25 words", "at most 25 words. No exclamation marks.", Checks(max_words=25),
         Checks(max_words=25, banned=("!",)), "exclamation marks"),
        ("at most 25 words", "plain English", Checks(max_words=25), Checks(max_words=25), None),
    ],
)  # fmt: skip
def test_a_check_in_step_follows_the_text(old, new, checks, expected, said):
    result, notes = rules.follow(old, new, checks)
    assert result == expected
    if said is None:
        assert notes == []
    else:
        assert any(said in n for n in notes)


def test_differences_say_what_differs_and_aligned_fixes_it():
    text = "One sentence, at most 18 words. No exclamation marks."
    checks = Checks(max_words=25)
    found = rules.differences(text, checks)
    assert [d.words() for d in found] == [
        "The prompt says at most 18 words; its check allows 25.",
        "The prompt says no exclamation marks; its check does not look for them.",
    ]
    assert rules.differences(text, rules.aligned(text, checks)) == []


@pytest.mark.parametrize("name", library.PromptLibrary().names())
def test_every_library_prompt_states_what_its_checks_check(name):
    spec = library.PromptLibrary().load(name)
    assert rules.differences(f"{spec.system}\n{spec.template}", spec.checks) == []
