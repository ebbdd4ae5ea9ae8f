"""Which rows a sample tries (lib/workbench/sample.py): first, random, ids, filter; plain errors."""

from __future__ import annotations

import json
from dataclasses import asdict

import pandas as pd
import pytest

from lib.leads import read_leads
from lib.workbench.sample import SampleChoice, SampleError, choose_rows, describe, parse_row_ids


@pytest.fixture(scope="module")
def df() -> pd.DataFrame:
    """250 rows numbered as the reader numbers them (1..250); titles cycle through five values."""
    titles = ["VP Sales", "Head of Growth", "", "vp marketing", "CEO"]
    lines = ["First Name,Title"] + [f"P{i},{titles[(i - 1) % 5]}" for i in range(1, 251)]
    lead = read_leads(("\n".join(lines) + "\n").encode(), "leads.csv")
    assert list(lead.df.index[:2]) == [1, 2]  # the ids the app shows
    return lead.df


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (SampleChoice(), [1, 2, 3, 4, 5]),
        (SampleChoice(n=2), [1, 2]),
        (SampleChoice(n=999), list(range(1, 251))),
        (SampleChoice(how="ids", ids="9, 1,5"), [9, 1, 5]),  # the order given
        (SampleChoice(how="ids", ids="3-5,4,250"), [3, 4, 5, 250]),  # repeats dropped
        (SampleChoice(how="filter", column="Title", text="vp", n=3), [1, 4, 6]),  # case-insensitive
        (SampleChoice(how="filter", column="Title", op="equals", text="CEO", n=2), [5, 10]),
        (SampleChoice(how="filter", column="Title", op="starts with", text="head", n=2), [2, 7]),
        (SampleChoice(how="filter", column="Title", op="is empty", n=2), [3, 8]),
        (SampleChoice(how="filter", column="Title", op="is not empty", n=4), [1, 2, 4, 5]),
    ],
)
def test_choose_rows(df, choice, expected):
    assert choose_rows(df, choice) == expected


def test_random_rows_are_reproducible_with_the_seed(df):
    one = choose_rows(df, SampleChoice(how="random", n=7, seed=1))
    assert one == choose_rows(df, SampleChoice(how="random", n=7, seed=1))
    assert one != choose_rows(df, SampleChoice(how="random", n=7, seed=2))
    assert len(set(one)) == 7 and set(one) <= set(range(1, 251)) and one != list(range(1, 8))


@pytest.mark.parametrize(
    ("choice", "message"),
    [
        (SampleChoice(how="ids", ids="1, 9999"), "Row 9999 is not in this file (rows 1–250)."),
        (SampleChoice(how="filter", column="Title", text="CFO"), "No row has Title containing 'CFO'."),
        (SampleChoice(how="filter", column="Titel", text="VP"), "Column 'Titel' is not in this file."),
        (SampleChoice(how="filter", column="Title", text=""), "Type the text to look for in Title."),
        (SampleChoice(n=0), "Choose at least 1 row."),
    ],
)
def test_a_choice_that_gives_no_rows_says_why(df, choice, message):
    with pytest.raises(SampleError) as err:
        choose_rows(df, choice)
    assert str(err.value).startswith(message)


def test_a_misspelt_column_gets_a_suggestion(df):
    with pytest.raises(SampleError, match="Did you mean 'Title'"):
        choose_rows(df, SampleChoice(how="filter", column="Titel", text="VP"))


def test_a_filter_no_row_matches_says_so_for_each_operator():
    frame = pd.DataFrame({"Title": ["x", "y"]}, index=pd.Index([1, 2], name="row_id"))
    for op, words in [("equals", "equal to 'z'"), ("starts with", "starting with 'z'")]:
        with pytest.raises(SampleError, match=f"No row has Title {words}"):
            choose_rows(frame, SampleChoice(how="filter", column="Title", op=op, text="z"))
    with pytest.raises(SampleError, match="No row has an empty Title"):
        choose_rows(frame, SampleChoice(how="filter", column="Title", op="is empty"))


def test_an_empty_file_has_no_rows_to_try():
    with pytest.raises(SampleError, match="no rows"):
        choose_rows(pd.DataFrame({"A": []}), SampleChoice())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1,5,9-12", [1, 5, 9, 10, 11, 12]),
        (" 3 ; 1 2 ", [3, 1, 2]),
        ("7–9", [7, 8, 9]),  # an en dash, as a spreadsheet may autocorrect it
        ("4,4,4", [4]),
    ],
)
def test_parse_row_ids(text, expected):
    assert parse_row_ids(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "Type at least one row number"),
        ("1,x", "'x' is not a row number"),
        ("1.5", "'1.5' is not a row number"),
        ("12-9", "'12-9' runs backwards"),
        ("0", "Row numbers start at 1."),
        ("1-1000000", "too many rows"),
    ],
)
def test_bad_row_ids_are_plain_errors(text, message):
    with pytest.raises(SampleError, match=message):
        parse_row_ids(text)


@pytest.mark.parametrize(
    ("choice", "words"),
    [
        (SampleChoice(), "first 5 rows"),
        (SampleChoice(n=1), "first row"),
        (SampleChoice(how="random", n=5, seed=1), "5 random rows (seed 1)"),
        (SampleChoice(how="ids", ids="1,5,9"), "rows 1, 5, 9"),
        (SampleChoice(how="ids", ids="1,5,9-12"), "rows 1, 5, 9-12"),
        (SampleChoice(how="ids", ids="7"), "row 7"),
        (SampleChoice(how="filter", column="Title", text="VP"), "first 5 rows where Title contains 'VP'"),
        (SampleChoice(how="filter", column="Title", op="is empty", n=2), "first 2 rows where Title is empty"),
    ],
)
def test_describe(choice, words):
    assert describe(choice) == words


def test_a_choice_round_trips_through_json():
    choice = SampleChoice(how="filter", n=3, column="Title", op="starts with", text="VP")
    assert SampleChoice(**json.loads(json.dumps(asdict(choice)))) == choice
