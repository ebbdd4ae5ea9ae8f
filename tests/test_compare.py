"""Variants side by side (lib/workbench/compare.py): cells, differing rows, word diffs, totals, projection."""

from __future__ import annotations

import pytest

from lib.cost.pricing import Usage
from lib.store import RowRecord
from lib.workbench.compare import (
    build_matrix,
    cell_of,
    diff_text,
    differing_rows,
    project_cost,
    totals,
    word_diff,
)


def answer(row_id, text, *, cost=0.01, pt=100, ct=20, latency=0.5, reused=False, flags=()):
    return RowRecord(
        row_id,
        status="succeeded",
        text=text,
        flags=tuple(flags),
        usage=Usage(pt, ct),
        cost_usd=cost,
        latency_s=None if reused else latency,
        from_cache=reused,
    )


def failed(row_id, error="Server error (500)."):
    return RowRecord(row_id, status="failed", error=error, retryable=True)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("same words", "same words", "same words"),
        ("the quick brown fox", "the slow red fox", "the [-quick brown-]{+slow red+} fox"),
        ("Hi Ann, great to meet!", "Hi Ann; great to meet you!", "Hi Ann[-,-]{+;+} great to meet{+ you+}!"),
        ("Loved your post.", "Loved your post!", "Loved your post[-.-]{+!+}"),
        ("Ñuñoa café", "Ñuñoa cafe", "Ñuñoa [-café-]{+cafe+}"),
        ("Cafe\u0301 au lait", "Cafe au lait", "[-Cafe\u0301-]{+Cafe+} au lait"),  # a combining accent
        ("東京 の チーム", "大阪 の チーム", "[-東京-]{+大阪+} の チーム"),
        (
            "東京のチームへ",
            "大阪のチームへ",
            "[-東京-]{+大阪+}のチームへ",
        ),  # no spaces: character by character
        ("Great 🚀 launch", "Great launch", "Great [-🚀 -]launch"),
        ("don't stop", "do not stop", "[-don't-]{+do not+} stop"),
        ("a  b", "a b", "a[-  -]{+ +}b"),
        ("", "hello", "{+hello+}"),
        ("bye", "", "[-bye-]"),
        ("line one\nline two", "line one\nline 2", "line one\nline [-two-]{+2+}"),
    ],
)
def test_word_diff(a, b, expected):
    segments = word_diff(a, b)
    assert diff_text(a, b) == expected
    assert "".join(t for k, t in segments if k != "removed") == b  # same + added is b, exactly
    assert "".join(t for k, t in segments if k != "added") == a
    assert all(t for _, t in segments) and all(
        x[0] != y[0] for x, y in zip(segments, segments[1:], strict=False)
    )  # no empty or split segments


def test_cells_carry_the_records_figures():
    record = answer(3, "Hi", cost=0.002, pt=40, ct=9, latency=1.25, flags=("too_long",))
    cell = cell_of(record)
    assert (cell.row_id, cell.text, cell.status, cell.flags) == (3, "Hi", "succeeded", ("too_long",))
    assert (cell.prompt_tokens, cell.completion_tokens, cell.cost_usd, cell.latency_s) == (40, 9, 0.002, 1.25)
    assert cell_of(answer(3, "Hi", reused=True)).reused is True


def test_a_row_a_variant_has_no_record_for_is_pending():
    m = build_matrix([1, 2, 3], {"A": [answer(1, "x"), answer(2, "y")], "B": []})
    assert m.variants == ("A", "B") and m.row_ids == (1, 2, 3)
    assert m.cells[("A", 3)].status == "pending" and m.cells[("B", 1)].status == "pending"
    assert m.cell("A", 2).text == "y"


@pytest.mark.parametrize(
    ("a", "b", "c", "differs"),
    [
        ("Hi Ann", "Hi Ann", "Hi Ann", False),
        ("Hi Ann", "hi  ann", " Hi\nAnn ", False),  # case and whitespace are not a difference
        ("Hi Ann", "Hi Ann!", "Hi Ann", True),
        ("Hi Ann", None, "Hi Ann", True),  # a failed row differs from an answer
        ("Hi Ann", "pending", "Hi Ann", False),  # a row still coming in is not called different
    ],
)
def test_differing_rows(a, b, c, differs):
    def rows(text):
        if text == "pending":
            return []
        return [failed(1)] if text is None else [answer(1, text)]

    m = build_matrix([1], {"A": rows(a), "B": rows(b), "C": rows(c)})
    assert differing_rows(m) == ([1] if differs else [])


def test_only_differing_rows_are_listed_in_row_order():
    m = build_matrix(
        [4, 2, 9],
        {
            "A": [answer(2, "x"), answer(4, "a"), answer(9, "z")],
            "B": [answer(2, "x"), answer(4, "b"), answer(9, "Z!")],
        },
    )
    assert differing_rows(m) == [4, 9]


def test_totals_count_what_was_paid():
    records = [
        answer(1, "one", cost=0.01, pt=100, ct=20, latency=0.4),
        answer(2, "two", cost=0.03, pt=300, ct=60, latency=0.8, flags=("too_long",)),
        answer(3, "three", cost=0.02, pt=200, ct=40, reused=True),  # first paid by an earlier run
        failed(4),
    ]
    m = build_matrix([1, 2, 3, 4, 5], {"A": records})
    t = totals(m, "A", "gpt-4o-mini")
    assert (t.name, t.model, t.rows, t.answered, t.failed, t.flagged, t.reused) == (
        "A", "gpt-4o-mini", 5, 3, 1, 1, 1
    )  # fmt: skip
    assert t.cost_usd == pytest.approx(0.04)  # the reused answer adds nothing
    assert (t.prompt_tokens, t.completion_tokens) == (400, 80)
    assert t.mean_latency_s == pytest.approx(0.6)  # over the two answers sent
    assert t.cost_if_paid == pytest.approx(0.06) and t.billed_rows == 3
    assert project_cost(t, 1000) == pytest.approx(20.0)  # $0.02 per billed answer


def test_a_sample_answered_entirely_from_earlier_answers_still_projects():
    m = build_matrix(
        [1, 2], {"A": [answer(1, "a", cost=0.01, reused=True), answer(2, "b", cost=0.03, reused=True)]}
    )
    t = totals(m, "A", "m")
    assert t.cost_usd == 0.0 and t.prompt_tokens == 0 and t.mean_latency_s is None
    assert project_cost(t, 100) == pytest.approx(2.0)


def test_an_unpriced_model_has_no_cost_and_no_projection():
    m = build_matrix([1], {"A": [answer(1, "a", cost=None)]})
    t = totals(m, "A", "llama-local")
    assert t.cost_usd is None and t.cost_if_paid is None and project_cost(t, 10) is None
    assert t.prompt_tokens == 100  # tokens are still counted


def test_a_variant_whose_every_row_failed_costs_nothing_and_projects_nothing():
    m = build_matrix([1, 2], {"A": [failed(1), failed(2)]})
    t = totals(m, "A", "m")
    assert (t.answered, t.failed, t.cost_usd, t.mean_latency_s) == (0, 2, 0.0, None)
    assert project_cost(t, 100) is None
