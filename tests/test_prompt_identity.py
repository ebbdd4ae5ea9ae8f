"""Every run records the exact prompt: hash, edited or not, mapping; History labels it; plan_run accepts
optional fields a file lacks."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import pandas as pd
import pytest

from lib.engine.runs import PlanError, RunOptions, plan_run, spec_of
from lib.prompts.checks import Checks
from lib.prompts.draft import Draft
from lib.prompts.identity import draft_identity, identity, opened_from, prompt_hash
from lib.prompts.library import PromptLibrary
from lib.prompts.templates import Example
from lib.store import RunRecord
from lib.views.history import history_frame, prompt_label, run_label

ICEBREAKER = PromptLibrary().load("Icebreaker")


@pytest.mark.parametrize(
    ("change", "same"),
    [
        ({}, True),
        ({"description": "other words"}, True),  # does not change a request
        ({"tags": ("x",)}, True),
        ({"version": 7}, True),
        ({"template": ICEBREAKER.template + "Be brief."}, False),
        ({"system": "Other."}, False),
        ({"temperature": 0.1}, False),
        ({"model": "gpt-4.1-mini"}, False),
        ({"examples": ICEBREAKER.examples[:1]}, False),
        ({"examples": (*ICEBREAKER.examples[:2], Example("x", "y"))}, False),
        ({"optional_fields": ("City",)}, False),
        ({"checks": Checks(max_words=10)}, False),
        ({"name": "Icebreaker 2"}, False),
    ],
)
def test_prompt_hash_follows_what_changes_requests(change, same):
    assert len(prompt_hash(ICEBREAKER)) == 8 and int(prompt_hash(ICEBREAKER), 16) >= 0
    assert (prompt_hash(replace(ICEBREAKER, **change)) == prompt_hash(ICEBREAKER)) is same


def test_prompt_hash_is_stable_across_processes():
    code = "from lib.prompts.library import PromptLibrary; from lib.prompts.identity import prompt_hash; "
    code += "print(prompt_hash(PromptLibrary().load('Icebreaker')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == prompt_hash(ICEBREAKER)


@pytest.mark.parametrize(
    ("spec", "saved", "edited"),
    [
        (ICEBREAKER, ICEBREAKER, False),
        (replace(ICEBREAKER, temperature=0.1), ICEBREAKER, True),
        (ICEBREAKER, None, True),  # a blank or command-line prompt
    ],
)
def test_identity(spec, saved, edited):
    assert identity(spec, saved) == {
        "prompt_name": "Icebreaker",
        "prompt_version": ICEBREAKER.version,
        "prompt_edited": edited,
        "prompt_hash": prompt_hash(spec),
    }


FRAME = pd.DataFrame({"First Name": ["Jane", "Li"], "Title": ["CFO", "CTO"], "Company": ["Acme", "Bolt"]})


def test_plan_run_records_the_hash_and_the_callers_identity():
    spec = replace(ICEBREAKER, temperature=0.1)
    meta = {**identity(spec, ICEBREAKER), "prompt_mapping": {"Company": "Company"}}
    plan = plan_run(FRAME, spec, RunOptions(model="gpt-4o-mini"), base_url=None, meta=meta)
    assert plan.meta["prompt_hash"] == prompt_hash(spec) == prompt_hash(spec_of(plan.meta))
    assert plan.meta["prompt_edited"] is True and plan.meta["prompt_mapping"] == {"Company": "Company"}
    bare = plan_run(FRAME, ICEBREAKER, RunOptions(model="gpt-4o-mini"), base_url=None)
    assert bare.meta["prompt_hash"] == prompt_hash(ICEBREAKER) and "prompt_edited" not in bare.meta


def test_plan_run_sends_missing_optional_fields_empty():
    """The icebreaker's Industry, City and # Employees are optional: a bare export plans and quotes."""
    plan = plan_run(FRAME, ICEBREAKER, RunOptions(model="gpt-4o-mini", empty="skip"), base_url=None)
    assert [i.row_id for i in plan.items] == [0, 1] and plan.skipped == {}  # optional never skips
    user = plan.items[0].body["messages"][-1]["content"]
    assert "Company: <data>Acme</data>\nIndustry: <data></data>\nCity: <data></data>" in user
    with pytest.raises(PlanError, match="There is no column named 'Title'"):
        plan_run(FRAME.drop(columns=["Title"]), ICEBREAKER, RunOptions(model="gpt-4o-mini"), base_url=None)


@pytest.mark.parametrize(
    ("meta", "label"),
    [
        ({"prompt_name": "Icebreaker", "prompt_version": 1}, "Icebreaker v1"),  # runs from before
        (
            {
                "prompt_name": "Icebreaker",
                "prompt_version": 1,
                "prompt_edited": False,
                "prompt_hash": "1a2b3c4d",
            },
            "Icebreaker v1",
        ),
        (
            {
                "prompt_name": "Icebreaker",
                "prompt_version": 1,
                "prompt_edited": True,
                "prompt_hash": "1a2b3c4d",
            },
            "Icebreaker v1, edited (#1a2b3c4d)",
        ),
        (
            {"prompt_name": "command-line", "prompt_version": 1, "prompt_edited": True},
            "command-line v1, edited",
        ),
    ],
)
def test_history_labels(meta, label):
    record = RunRecord(
        "r1", 1_700_000_000.0, 1_700_000_060.0, "finished", None, {**meta, "input_name": "a.csv"}
    )
    assert prompt_label(meta) == label
    assert list(history_frame([record])["prompt"]) == [label]
    assert f"· run of {label} on a.csv ·" in run_label(record)


def test_opened_from_finds_the_saved_version(tmp_path):
    import shutil

    shutil.copytree(PromptLibrary().directory, tmp_path / "prompts")
    lib = PromptLibrary(tmp_path / "prompts")
    v = ICEBREAKER.version
    lib.save_version(replace(ICEBREAKER, temperature=0.2), expected_version=v)
    assert opened_from(lib, "Icebreaker", v) == ICEBREAKER  # the kept version, not the current one
    assert opened_from(lib, "Icebreaker", v + 1).temperature == 0.2
    assert opened_from(lib, "", v) is None and opened_from(lib, "Gone", v) is None
    assert opened_from(lib, "Icebreaker", 99) is None
    assert identity(ICEBREAKER, opened_from(lib, "Icebreaker", v))["prompt_edited"] is False


@pytest.mark.parametrize(
    ("draft", "saved", "mapping", "expected"),
    [
        (None, None, {}, {}),
        (Draft(name="Blank", template="   "), None, {}, {}),  # not a prompt yet: nothing to record
        (Draft.of(ICEBREAKER), ICEBREAKER, {}, {"prompt_name": "Icebreaker", "prompt_edited": False}),
        (Draft.of(ICEBREAKER), None, {"Title": "Job Title"},
         {"prompt_edited": True, "prompt_mapping": {"Title": "Job Title"}}),
        (Draft.of(replace(ICEBREAKER, system="Other.")), ICEBREAKER, {}, {"prompt_edited": True}),
    ],
)  # fmt: skip
def test_a_drafts_identity_says_if_it_was_edited_and_carries_the_mapping(draft, saved, mapping, expected):
    found = draft_identity(draft, saved, mapping)
    assert {k: found.get(k) for k in expected} == expected
    assert ("prompt_mapping" in found) == bool(mapping)
