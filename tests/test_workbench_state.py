"""The workbench's columns, staleness, ratings and their JSON round trip (lib/workbench/state.py)."""

from __future__ import annotations

import pytest

from lib.prompts.checks import Checks
from lib.prompts.draft import Draft
from lib.prompts.templates import PromptSpec
from lib.workbench import state
from lib.workbench.state import MAX_VARIANTS, Workbench
from lib.workspace import Workspace


def variant(
    kind: state.Kind = "try", label: str = "Try 1", tried_at: float = 0.0, fp: str = "a"
) -> state.Variant:
    v = state.new_variant(
        kind, label, Draft(template="Hi {{ Name }}"), model="gpt-4o-mini", temperature=0.7, max_tokens=40
    )
    v.tried_at, v.fingerprint, v.run_id = tried_at, fp, f"run-{label}"
    return v


def bench_of(*kinds: state.Kind) -> Workbench:
    wb = Workbench()
    for i, kind in enumerate(kinds):
        assert wb.add(variant(kind, f"{kind} {i}", tried_at=float(i))) is None
    return wb


@pytest.mark.parametrize(
    ("kinds", "new_kind", "refused", "removed"),
    [
        (("try",), "try", False, None),
        (("try", "try", "try"), "try", False, None),  # room for a fourth
        (("try", "try", "try", "try"), "try", False, "try 0"),  # the oldest earlier try goes
        (("version", "try", "model", "try"), "model", False, "try 1"),
        (("version", "model", "model", "try"), "try", False, "try 3"),  # a new try takes the newest's place
        (("version", "model", "model", "try"), "model", True, None),  # ...but another variant does not
        (("version", "model", "model", "version"), "try", True, None),
        (("version", "model", "model", "version"), "model", True, None),
    ],
)
def test_columns_are_capped_and_the_oldest_earlier_try_makes_room(kinds, new_kind, refused, removed):
    wb = bench_of(*kinds)
    before = [v.label for v in wb.variants]
    reason = wb.add(variant(new_kind, "new", tried_at=99.0))
    assert (reason is not None) == refused
    assert len(wb.variants) <= MAX_VARIANTS
    labels = [v.label for v in wb.variants]
    if refused:
        assert labels == before and "remove one" in reason
    else:
        assert labels[-1] == "new"
        assert (removed is None) == (len(labels) == len(before) + 1)
        if removed:
            assert removed not in labels


@pytest.mark.parametrize(
    ("which", "draft_fp", "stale"),
    [
        ("newest try", "a", False),  # nothing changed since
        ("newest try", "b", True),  # the draft changed
        ("newest try", None, False),  # the draft cannot be sent: nothing to compare
        ("earlier try", "b", False),  # an earlier try is history, not stale
        ("version", "b", False),  # a saved version never goes stale
    ],
)
def test_only_the_newest_try_goes_stale_when_the_draft_changes(which, draft_fp, stale):
    wb = Workbench()
    old, new, saved = (
        variant("try", "Try 1", 1.0, "x"),
        variant("try", "Try 2", 2.0, "a"),
        variant("version", "v1", 3.0, "z"),
    )
    for v in (old, new, saved):
        wb.add(v)
    target = {"newest try": new, "earlier try": old, "version": saved}[which]
    assert wb.stale(target, draft_fp) is stale


def test_a_new_sample_keeps_the_columns_marked_as_tried_on_other_rows():
    wb = Workbench()
    wb.set_sample({"how": "first", "n": 2}, [1, 2])
    for v in (variant("try", "Try 1", 1.0, "a"), variant("model", "m", 2.0, "b")):
        v.row_ids = [1, 2]
        wb.add(v)
    assert not any(wb.needs_try(v) for v in wb.variants)
    wb.set_sample({"how": "ids", "ids": "3,4"}, [3, 4])
    assert [v.label for v in wb.variants] == ["Try 1", "m"], "nothing is hidden or dropped"
    assert all(wb.needs_try(v) and v.run_id for v in wb.variants)
    assert not wb.stale(wb.variants[0], "changed"), "answers on other rows are not stale, just elsewhere"
    assert wb.same_as("a") is None, "a column on other rows answers nothing here"


def test_the_chosen_column_is_kept_and_the_draft_equal_to_a_column_is_not_stale():
    wb = Workbench()
    old, new, model = (
        variant("try", "Try 1", 1.0, "a"),
        variant("try", "Try 2", 2.0, "b"),
        variant("model", "m", 3.0, "c"),
    )
    for v in (old, new, model):
        wb.add(v)
    wb.chosen = model.key
    assert not wb.stale(new, "c"), "the draft is the chosen column's prompt: nothing is stale"
    assert wb.stale(new, "d")
    wb.add(variant("version", "v1", 4.0, "e"))
    reason = wb.add(variant("model", "m2", 5.0, "f"))
    assert reason is None and model.key in [v.key for v in wb.variants], "the chosen column is never dropped"
    wb.remove(model.key)
    assert wb.chosen is None


@pytest.mark.parametrize(
    ("calls", "expected"),
    [
        ([{"vote": 1}], state.Rating(1, "")),
        ([{"vote": 1}, {"note": "names the city"}], state.Rating(1, "names the city")),
        ([{"vote": -1}, {"vote": 1}], state.Rating(1, "")),
        ([{"vote": 1}, {"vote": 0}], None),  # cleared: no empty rating kept
        ([{"note": "too formal"}], state.Rating(0, "too formal")),
    ],
)
def test_ratings_follow_the_answer(calls, expected):
    wb = Workbench()
    for call in calls:
        wb.rate("hash-1", **call)
    assert wb.ratings.get("hash-1") == expected
    assert wb.rating("hash-1") == (expected or state.Rating())


def test_the_diff_pair_follows_the_columns():
    wb = bench_of("try", "try", "model")
    assert wb.diff_pair == [wb.variants[1].key, wb.variants[2].key]
    wb.remove(wb.variants[2].key)
    assert wb.diff_pair == [wb.variants[0].key, wb.variants[1].key]


def test_the_workbench_survives_the_workspace_json():
    ws = Workspace(id="abcdefgh12")
    wb = bench_of("try", "version")
    wb.variants[0].draft = Draft(
        template="T {{ A }}", checks=Checks(max_words=9, banned=("x",)), examples=[("u", "a")]
    )
    wb.rate("h", vote=1, note="good")
    wb.set_sample({"how": "ids", "ids": "3,1"}, [3, 1])
    ws.workbench, ws.mapping = wb, {"Company": "Company Name", "City": ""}
    back = Workspace.from_json(ws.to_json())
    assert back.workbench == ws.workbench
    assert back.mapping == ws.mapping
    assert back.workbench.variants[0].draft.checks.banned == ("x",)


def test_a_liked_answer_becomes_an_example_with_the_rows_exact_message():
    spec = PromptSpec(name="t", template="Line for {{ First Name }} at {{ Company }}.")
    user, answer = state.example_from(spec, {"First Name": "Ana", "Company": "Acme"}, "Ana, hello.")
    assert answer == "Ana, hello."
    assert "Ana" in user and "Acme" in user and user.startswith("Line for ")
    assert "{{" not in user


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ([(1, "h1"), (2, "h2")], [(2, "h2"), (1, "h1")], True),  # order does not matter
        ([(1, "h1"), (2, "h2")], [(1, "h1"), (2, "hX")], False),
        ([(1, "h1")], [(1, "h1"), (2, "h2")], False),
    ],
)
def test_fingerprints_are_equal_exactly_when_the_requests_are(a, b, same):
    assert (state.fingerprint(a) == state.fingerprint(b)) is same
