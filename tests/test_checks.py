"""Answer quality checks as tables: each check, its near misses, the YAML section, the list-level opener check."""

from __future__ import annotations

import pytest

from lib.prompts import checks
from lib.prompts.checks import Checks, check_answer
from lib.prompts.library import PromptLibrary, PromptLibraryError, dump_spec, parse_spec

ROW = {"First Name": "Jane", "Company": "ACME Holdings, Inc.", "City": "Amazing Grace"}


def flags(found: list[checks.Finding]) -> list[str]:
    return [f.flag for f in found]


PLACEHOLDER_CASES = [
    ("Hi {{First Name}}, your team is growing.", True),
    ("{{ Company }} must be busy.", True),
    ("Hello {first_name}, congrats.", True),
    ("Scaling [Company Name] across Europe is hard.", True),
    ("Running ops at [COMPANY] is hard.", True),
    ("Dear <first name>, hiring is hard.", True),
    ("As [Your Title] you see it all.", True),
    ("[Name], logistics is hard.", True),
    # near misses: real words in brackets, parentheses, a lone brace, JSON-ish text
    ("The quote [sic] is from their site.", False),
    ("Your team (Acme) has grown fast.", False),
    ("Rotterdam [Netherlands] ports are busy.", False),
    ("Margins of {5%} are thin.", False),
    ("A plain answer with no brackets at all.", False),
    ("Use <b> tags? No.", False),
]


@pytest.mark.parametrize(("text", "flagged"), PLACEHOLDER_CASES)
def test_placeholders_are_always_checked(text: str, flagged: bool) -> None:
    found = check_answer(Checks(), text, ROW)
    assert flags(found) == ([checks.PLACEHOLDER] if flagged else [])
    if flagged:
        assert "placeholder" in found[0].message and "word " in found[0].message


LENGTH_CASES = [
    # (checks, text, flagged, words in the message)
    (Checks(max_words=5), "one two three four five", False, None),
    (Checks(max_words=5), "one two three four five six", True, "6 words; the prompt allows at most 5"),
    (Checks(max_words=5), "  one   two\nthree four five  ", False, None),
    (Checks(max_chars=10), "0123456789", False, None),
    (Checks(max_chars=10), "0123456789x", True, "11 characters; the prompt allows at most 10"),
    (Checks(max_chars=10), "  0123456789  ", False, None),
    (Checks(), "word " * 500, False, None),
]


@pytest.mark.parametrize(("rules", "text", "flagged", "message"), LENGTH_CASES)
def test_too_long(rules: Checks, text: str, flagged: bool, message: str | None) -> None:
    found = check_answer(rules, text, ROW)
    assert flags(found) == ([checks.TOO_LONG] if flagged else [])
    if message:
        assert message in found[0].message


BANNED = Checks(
    banned=("I hope this email finds you well", "amazing", "quick question", "I love what you're doing")
)
BANNED_CASES = [
    ("I hope this email finds you well, Jane.", True),
    ("i HOPE this   email\nfinds you well", True),  # any case, any spacing
    ("Jane, what an Amazing quarter.", True),
    ("Jane, I love what you’re doing at Acme.", True),  # a curly apostrophe
    ("One quick question about freight.", True),
    # near misses: a longer word, part of the phrase only, a lead's own value holding the word
    ("Jane, Acme grew amazingly fast.", False),
    ("A quick look at freight in Rotterdam.", False),
    ("I hope the freight season is calm.", False),
    ("Jane, opening a second site in Amazing Grace is a big step.", False),
]


@pytest.mark.parametrize(("text", "flagged"), BANNED_CASES)
def test_banned_phrases(text: str, flagged: bool) -> None:
    found = check_answer(BANNED, text, ROW)
    assert flags(found) == ([checks.BANNED] if flagged else [])
    if flagged:
        assert "banned phrase" in found[0].message


MENTION_CASES = [
    # (column, text, flagged)
    ("Company", "Jane, ACME Holdings, Inc. must be hiring.", False),
    ("Company", "Jane, Acme must be hiring.", False),  # said the way people say it
    ("Company", "Jane, acme's freight is busy.", False),
    ("Company", "Jane, your freight is busy.", True),
    ("Company", "Jane, Acmecorp freight is busy.", True),  # a longer word is not the name
    ("First Name", "Jane, freight is busy.", False),
    ("First Name", "Janet, freight is busy.", True),
    ("Missing column", "Anything at all.", False),  # an empty value cannot be mentioned: not flagged
]


@pytest.mark.parametrize(("column", "text", "flagged"), MENTION_CASES)
def test_must_mention(column: str, text: str, flagged: bool) -> None:
    found = check_answer(Checks(mention=(column,)), text, ROW)
    assert flags(found) == ([checks.MISSING_MENTION] if flagged else [])
    if flagged:
        assert column in found[0].message


def test_several_rules_broken_give_one_finding_each_with_where() -> None:
    rules = Checks(max_words=4, banned=("amazing",), mention=("Company",))
    found = check_answer(rules, "Hi {{First Name}}, amazing work out there today.", ROW, where="icebreaker")
    assert flags(found) == [checks.PLACEHOLDER, checks.TOO_LONG, checks.BANNED, checks.MISSING_MENTION]
    assert all(f.message.startswith("In 'icebreaker': ") for f in found)


OPENER_CASES = [
    # (answers, share, rows flagged)
    ({i: f"Jane, as head of ops number {i}" for i in range(4)}, 0.25, {0, 1, 2, 3}),
    (
        {0: "As head of ops, a", 1: "As head of ops, b", 2: "As head of ops, c", 3: "x y z", 4: "p q r"},
        0.5,
        {0, 1, 2},
    ),
    (
        {0: "As head of ops, a", 1: "As head of ops, b", 2: "As head of ops, c", 3: "x y z", 4: "p q r"},
        0.6,
        set(),
    ),
    # two alike are a coincidence, not a pattern
    ({0: "As head of ops", 1: "as HEAD, of ops", 2: "x y z"}, 0.25, set()),
    ({0: "a b", 1: "a b", 2: "a b", 3: "a b"}, 0.25, set()),  # under three words: no opener
    ({i: f"Row {i} starts its own way" for i in range(10)}, 0.25, set()),
]


@pytest.mark.parametrize(("answers", "share", "expected"), OPENER_CASES)
def test_repeated_openers(answers: dict[int, str], share: float, expected: set[int]) -> None:
    found = checks.repeated_openers(answers, share)
    assert set(found) == expected
    assert all(f.flag == checks.REPEATED_OPENER and "start with" in f.message for f in found.values())


YAML_CASES = [
    ("max_words: 25", Checks(max_words=25)),
    ("max_chars: 200\nmust_mention: [Company]", Checks(max_chars=200, mention=("Company",))),
    ("banned_phrases: [amazing, quick question]", Checks(banned=("amazing", "quick question"))),
    ("max_opener_share: 0.5", Checks(max_opener_share=0.5)),
]


@pytest.mark.parametrize(("section", "expected"), YAML_CASES)
def test_checks_section_round_trips(section: str, expected: Checks) -> None:
    body = "\n".join("  " + line for line in section.splitlines())
    spec = parse_spec(f"name: T\ntemplate: 'x {{{{ a }}}}'\nchecks:\n{body}\n", source="t.yaml")
    assert spec.checks == expected
    assert parse_spec(dump_spec(spec)).checks == expected


BAD_YAML = [
    ("max_words: 0", "checks.max_words"),
    ("max_words: ten", "checks.max_words"),
    ("banned_phrases: [amazing, '']", "checks.banned_phrases"),
    ("max_opener_share: 2", "checks.max_opener_share"),
    ("max_lenght: 3", "'checks.max_lenght' is not a check"),
]


@pytest.mark.parametrize(("section", "message"), BAD_YAML)
def test_bad_checks_section_names_the_field(section: str, message: str) -> None:
    with pytest.raises(PromptLibraryError, match="t.yaml") as caught:
        parse_spec(f"name: T\ntemplate: x\nchecks:\n  {section}\n", source="t.yaml")
    assert message in str(caught.value)


def test_the_icebreaker_bans_what_its_rules_ban() -> None:
    spec = PromptLibrary().load("Icebreaker")
    assert spec.checks.max_words == 25
    for phrase in (
        "I hope this email finds you well",
        "quick question",
        "impressive",
        "I came across your profile",
    ):
        assert phrase in spec.checks.banned and phrase.casefold() in " ".join(spec.system.casefold().split())
    for example in spec.examples:  # its own examples pass its own checks
        assert check_answer(spec.checks, example.assistant) == []


def test_count_flags_counts_rows_per_check() -> None:
    rows = [
        ["truncated", "quality:too_long"],
        ["quality:too_long", "quality:banned_phrase"],
        [],
        ["quality:too_long"],
    ]
    assert checks.count_flags(rows) == {"banned_phrase": 1, "too_long": 3}


def test_merged_adds_the_command_line_on_top() -> None:
    base = Checks(max_words=25, banned=("amazing",))
    merged = base.merged(max_chars=100, banned=("synergy", "amazing"), mention=("Company",))
    assert merged == Checks(max_words=25, max_chars=100, banned=("amazing", "synergy"), mention=("Company",))
    assert base.merged(max_words=10).max_words == 10


STRUCTURED_CASES = [
    # (answer JSON, expected (flag, where) pairs)
    ('{"icebreaker": "Jane, a short line.", "subject": "Freight"}', []),
    (
        '{"icebreaker": "one two three four five six", "subject": "Freight"}',
        [(checks.TOO_LONG, "icebreaker")],
    ),
    (
        '{"icebreaker": "Hi [First Name]", "subject": "For {{Company}}"}',
        [(checks.PLACEHOLDER, "icebreaker"), (checks.PLACEHOLDER, "subject")],
    ),
    ('{"icebreaker": "not closed"', []),  # invalid JSON is flagged invalid_output, not checked
]


@pytest.mark.parametrize(("answer", "expected"), STRUCTURED_CASES)
def test_structured_answers_are_checked_per_field(answer: str, expected: list[tuple[str, str]]) -> None:
    from lib.engine.runs import quality_checker
    from lib.prompts.templates import PromptSpec

    spec = PromptSpec(
        name="s", template="x", output_columns=("icebreaker", "subject"), checks=Checks(max_words=5)
    )
    found = quality_checker(spec, {1: ROW})(1, answer)
    assert [(flag, message.split("'")[1]) for flag, message in found] == expected


COUNTS_TEXT = [
    ({}, ""),
    ({"too_long": 3}, "too long: 3"),
    ({"too_long": 1200, "banned_phrase": 1}, "too long: 1,200 · banned phrase: 1"),
    ({"placeholder": 0, "new_check": 2}, "new check: 2"),
    ({"placeholder": 1}, "left-over placeholder: 1"),
]


@pytest.mark.parametrize(("counts", "text"), COUNTS_TEXT)
def test_review_counts_text(counts: dict[str, int], text: str) -> None:
    from lib.views.review import counts_text

    assert counts_text(counts) == text


def test_review_puts_quality_flagged_rows_first_in_order() -> None:
    import pandas as pd

    from lib.views.review import flagged_first

    flags = ["", "quality:too_long", "truncated", "truncated,quality:placeholder", ""]
    frame = pd.DataFrame({"answer": list("abcde"), "enrich_flags": flags}, index=[1, 2, 3, 4, 5])
    assert list(flagged_first(frame).index) == [2, 4, 1, 3, 5]
    assert flagged_first(frame.iloc[0:0]).empty
