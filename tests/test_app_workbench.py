"""The Prompt page as a workbench, under AppTest against the local simulator: fit a library prompt to a CRM
export, optional fields sent empty, try, edit, try again with both answers side by side, rate, turn a liked
answer into an example, use a variant, and the prompt's versions (list, diff, restore)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lib.models import DEFAULT_MODEL
from lib.prompts.library import PromptLibrary
from lib.store import Store
from lib.workspace import Workspaces
from tests.apptest_helpers import choose_prompt, goto, new_app, running_tries, upload, wait_for_tries
from tests.engine_helpers import wait_until
from tests.prompt_helpers import fresh_library

pytestmark = pytest.mark.usefixtures("app_env")

# A HubSpot-style export: the icebreaker's Title and Company are "Job Title" and "Company Name" here, and
# it has no Industry, City or # Employees (optional in the icebreaker).
CRM_CSV = (
    "First Name,Last Name,Job Title,Company Name,Email\r\n"
    "Ann,Lee,VP Sales,Acme,ann@acme.test\r\n"
    "Bob,Ray,CEO,Globex,bob@globex.test\r\n"
    "Li,Wu,SDR,Initech,li@initech.test\r\n"
    "Zoë,Ng,Head of Growth,Umbrella,zoe@umbrella.test\r\n"
    "Max,Ito,CFO,Hooli,max@hooli.test\r\n"
    "Eva,Kim,COO,Vandelay,eva@vandelay.test\r\n"
).encode()


@pytest.fixture
def prompts_dir(tmp_path, monkeypatch) -> Path:
    """A copy of the shipped prompts, so saving versions does not touch the repository's."""
    folder = fresh_library(tmp_path / "prompts")
    monkeypatch.setenv("LEAD_STUDIO_PROMPTS_DIR", str(folder))
    return folder


def saved(at, data_dir):
    store = Store(data_dir)
    try:
        return Workspaces(store).load(at.session_state["ws_id"])
    finally:
        store.close()


def texts(at) -> str:
    return "\n".join(
        [t.value for t in at.text] + [c.value for c in at.caption] + [m.value for m in at.markdown]
    )


def fitted(at):
    """Open the icebreaker on the CRM export and confirm the suggested columns in one click."""
    at = choose_prompt(upload(at, "hubspot.csv", CRM_CSV))
    at.button(key="btn_fit_use").click().run()
    assert not at.exception, at.exception
    return at


def test_a_library_prompt_is_fitted_to_a_crm_export_in_one_click(keyed, data_dir, prompts_dir):
    at = choose_prompt(upload(new_app(), "hubspot.csv", CRM_CSV))
    editor = next(d for d in at.data_editor if "Placeholder" in d.value.columns)
    table = editor.value.set_index("Placeholder")
    assert table.loc["Title", "Column in this file"] == "Job Title"
    assert table.loc["Company", "Column in this file"] == "Company Name"
    assert at.button(key="btn_try").proto.disabled, "nothing can be tried before the columns are confirmed"
    at.button(key="btn_fit_use").click().run()
    assert not at.exception, at.exception
    w = saved(at, data_dir)
    assert w.mapping["Title"] == "Job Title" and w.mapping["Company"] == "Company Name"
    assert not at.button(key="btn_try").proto.disabled
    # The missing optional fields are sent empty, with a note; the examples that mention them are pointed out.
    assert "Industry → \\(send empty\\)" in texts(at)
    assert "Examples 1, 2 and 3 mention Industry, City and Employees" in texts(at)
    # The library prompt keeps its own names: the mapping belongs to this workspace and file.
    assert "{{ Company }}" in w.draft.template


def test_try_edit_try_again_shows_both_answers_side_by_side_and_marks_stale(keyed, data_dir, prompts_dir):
    at = fitted(new_app())
    wait_for_tries(at.button(key="btn_try").click().run())
    assert not at.exception, at.exception
    w = saved(at, data_dir)
    assert [v.label for v in w.workbench.variants] == ["Try 1"]
    first = keyed.ledger()
    assert len(first) == 5, "the first five rows were sent"
    assert all("Job Title" not in str(r) for r in first)
    # An edit marks the answers stale until tried again.
    at.text_area(key="p_system").set_value(w.draft.system + "\n- Mention the company by name.").run()
    assert "The prompt changed since these answers" in texts(at)
    wait_for_tries(at.button(key="btn_try").click().run())
    w = saved(at, data_dir)
    assert [v.label for v in w.workbench.variants] == ["Try 1", "Try 2"]
    assert len(keyed.ledger()) == 10
    assert "The prompt changed since" not in texts(at)
    # Trying again without a change sends nothing.
    wait_for_tries(at.button(key="btn_try").click().run())
    assert len(keyed.ledger()) == 10
    assert [v.label for v in saved(at, data_dir).workbench.variants] == ["Try 1", "Try 2"]


def test_a_liked_answer_becomes_an_example_and_use_this_variant_chooses_it(keyed, data_dir, prompts_dir):
    at = fitted(new_app())
    wait_for_tries(at.button(key="btn_try").click().run())
    w = saved(at, data_dir)
    v = w.workbench.variants[0]
    examples_before = len(w.draft.examples)
    at.feedback(key=f"fb_{v.key}_1").set_value(1).run()
    w = saved(at, data_dir)
    assert any(r.vote == 1 for r in w.workbench.ratings.values())
    at.button(key=f"btn_ex_{v.key}_1").click().run()
    w = saved(at, data_dir)
    assert len(w.draft.examples) == examples_before + 1
    user, answer = w.draft.examples[-1]
    assert "<data>Ann</data>" in user and "<data>Acme</data>" in user
    assert answer.startswith("SIM[")
    at.button(key=f"btn_use_{v.key}").click().run()
    w = saved(at, data_dir)
    assert w.sample_run_id == v.run_id
    assert len(w.draft.examples) == examples_before  # the variant's prompt, as tried


def test_versions_are_listed_diffed_and_restored(data_dir, prompts_dir):
    at = choose_prompt(upload(new_app()))
    at.text_input(key="p_name").run()
    at.text_area(key="p_system").set_value("Version two's system message.").run()
    at.button(key="btn_save_version").click().run()
    assert not at.exception, at.exception
    library = PromptLibrary(prompts_dir)
    assert [v.version for v in library.versions("Icebreaker")] == [2, 1]
    assert "tags" in (prompts_dir / "icebreaker.yaml").read_text()
    at.run()
    assert at.selectbox(key="p_version_pick").value == 1
    diff = next(c.value for c in at.code if "Version two's system message." in c.value)
    assert diff.startswith("---") and "+++" in diff
    at.button(key="btn_restore_version").click().run()
    assert [v.version for v in library.versions("Icebreaker")] == [3, 2, 1]
    assert library.load("Icebreaker").system == library.load_version("Icebreaker", 1).system


def test_an_empty_template_cannot_be_saved(data_dir, prompts_dir):
    at = goto(new_app(), "prompt")
    at.text_input(key="p_name").set_value("Nothing").run()
    at.text_area(key="p_template").set_value("   ").run()
    at.button(key="btn_save_new").click().run()
    assert any("template is empty" in str(e.value) for e in at.error)
    assert not (prompts_dir / "nothing.yaml").exists()


def test_a_packed_variant_is_compared_with_one_row_per_request(keyed, data_dir, prompts_dir):
    """Issue 15 in the workbench: the same prompt packed 5 rows a request, beside the unpacked try."""
    at = fitted(new_app())
    wait_for_tries(at.button(key="btn_try").click().run())
    sent = len(keyed.ledger())
    at.radio(key="wb_add_kind").set_value("Several rows per request").run()
    at.number_input(key="wb_add_pack").set_value(5).run()
    wait_for_tries(at.button(key="btn_wb_add").click().run())
    assert not at.exception, at.exception
    w = saved(at, data_dir)
    assert [v.rows_per_request for v in w.workbench.variants] == [None, 5]
    assert len(keyed.ledger()) == sent + 1, "five rows in one request"
    line = next(c.value for c in at.caption if c.value.startswith("Against one row per request"))
    assert "\\(Try 1\\)" in line and "less" in line and "5 of 5 answers the same" in line


def test_a_saved_version_and_another_model_sit_beside_the_draft(keyed, data_dir, prompts_dir):
    at = fitted(new_app())
    at.text_area(key="p_system").set_value("A second version's rules.").run()
    at.button(key="btn_save_version").click().run()
    wait_for_tries(at.button(key="btn_try").click().run())
    at.radio(key="wb_add_kind").set_value("A saved version").run()
    at.selectbox(key="wb_add_version").set_value(1).run()
    wait_for_tries(at.button(key="btn_wb_add").click().run())
    at.radio(key="wb_add_kind").set_value("Another model").run()
    at.text_input(key="wb_add_model").set_value("gpt-4.1-mini").run()
    wait_for_tries(at.button(key="btn_wb_add").click().run())
    assert not at.exception, at.exception
    w = saved(at, data_dir)
    assert [v.label for v in w.workbench.variants] == ["Try 1", "Icebreaker v1", "Icebreaker · gpt-4.1-mini"]
    assert w.workbench.variants[1].draft.system != "A second version's rules."
    bodies = [e for e in keyed.ledger()]
    assert {b.get("model") for b in bodies} >= {DEFAULT_MODEL, "gpt-4.1-mini"}


def test_a_variant_identical_to_a_column_sends_nothing(keyed, data_dir, prompts_dir):
    at = fitted(new_app())
    wait_for_tries(at.button(key="btn_try").click().run())
    sent = len(keyed.ledger())
    at.radio(key="wb_add_kind").set_value("Another effort").run()
    at.selectbox(key="wb_add_effort").set_value("none").run()  # the icebreaker's own effort
    wait_for_tries(at.button(key="btn_wb_add").click().run())
    assert any("sends exactly what Try 1 sends" in str(x.value) for x in at.warning)
    assert len(keyed.ledger()) == sent
    assert len(saved(at, data_dir).workbench.variants) == 1


def test_the_same_prompt_at_two_efforts_side_by_side(keyed, data_dir, prompts_dir):
    """Effort none against medium on the sample: reasoning tokens billed, answers cut short, told where."""
    at = fitted(new_app())
    wait_for_tries(at.button(key="btn_try").click().run())
    assert "Another temperature" not in at.radio(key="wb_add_kind").options  # gpt-6-luna refuses one
    at.radio(key="wb_add_kind").set_value("Another effort").run()
    at.selectbox(key="wb_add_effort").set_value("medium").run()
    wait_for_tries(at.button(key="btn_wb_add").click().run())
    assert not at.exception, at.exception
    w = saved(at, data_dir)
    none, medium = w.workbench.variants
    assert (none.reasoning_effort, medium.reasoning_effort) == ("none", "medium")
    assert medium.label.endswith("effort medium") and "effort medium" in medium.settings_text()
    ledger = keyed.ledger()
    by_effort = {e: [x for x in ledger if x["reasoning_effort"] == e] for e in ("none", "medium")}
    assert len(by_effort["none"]) == len(by_effort["medium"]) == 5
    assert sum(x["reasoning_tokens"] for x in by_effort["none"]) == 0
    assert sum(x["reasoning_tokens"] for x in by_effort["medium"]) > 0
    words = texts(at)
    assert "reasoning" in words and "cut short" in words  # the medium column says what its thinking cost


def test_a_new_sample_keeps_the_columns_until_every_variant_is_tried_on_it(keyed, data_dir, prompts_dir):
    at = fitted(new_app())
    wait_for_tries(at.button(key="btn_try").click().run())
    at.radio(key="wb_how").set_value("ids").run()
    at.text_input(key="wb_ids").set_value("2, 6").run()
    at.button(key="btn_wb_sample").click().run()
    w = saved(at, data_dir)
    assert w.workbench.row_ids == [2, 6] and [v.label for v in w.workbench.variants] == ["Try 1"]
    assert "Tried on other rows" in texts(at)
    sent = len(keyed.ledger())
    wait_for_tries(at.button(key="btn_try_all").click().run())
    assert len(keyed.ledger()) == sent + 1, "row 2 was answered in the first sample: only row 6 is sent"
    w = saved(at, data_dir)
    assert w.workbench.variants[0].row_ids == [2, 6] and "Tried on other rows" not in texts(at)


@pytest.mark.parametrize(
    ("ids", "message"), [("999", "Row 999 is not in this file"), ("abc", "'abc' is not a row number")]
)
def test_a_bad_sample_is_said_in_the_sample_box(keyed, data_dir, prompts_dir, ids, message):
    at = fitted(new_app())
    at.radio(key="wb_how").set_value("ids").run()
    at.text_input(key="wb_ids").set_value(ids).run()
    at.button(key="btn_wb_sample").click().run()
    box = next(e for e in at.expander if e.label.startswith("Sample:"))
    assert any(message in w.value for w in box.warning)
    assert saved(at, data_dir).workbench.row_ids == [1, 2, 3, 4, 5], "the sample stays as it was"


def test_a_column_changed_in_the_fit_table_is_used(keyed, data_dir, prompts_dir):
    at = choose_prompt(upload(new_app(), "hubspot.csv", CRM_CSV))
    editor = next(d for d in at.data_editor if "Placeholder" in d.value.columns)
    row = list(editor.value["Placeholder"]).index("Industry")
    at.session_state[editor.key] = {
        "edited_rows": {row: {"Column in this file": "Email"}},
        "added_rows": [],
        "deleted_rows": [],
    }
    at.button(key="btn_fit_use").click().run()
    mapping = saved(at, data_dir).mapping
    assert mapping.get("Industry") == "Email" and mapping.get("Company") == "Company Name"


def test_use_this_marks_the_column_and_the_run_follows_the_prompt(keyed, data_dir, prompts_dir):
    at = fitted(new_app())
    wait_for_tries(at.button(key="btn_try").click().run())
    at.radio(key="wb_add_kind").set_value("Another model").run()
    at.text_input(key="wb_add_model").set_value("gpt-4.1-mini").run()
    wait_for_tries(at.button(key="btn_wb_add").click().run())
    other = saved(at, data_dir).workbench.variants[1]
    at.button(key=f"btn_use_{other.key}").click().run()
    w = saved(at, data_dir)
    assert w.workbench.chosen == other.key and w.effective_model() == "gpt-4.1-mini"
    assert w.origin("temperature") == "from the prompt 'Icebreaker'", "not 'set by you'"
    assert "The run's prompt" in texts(at)
    assert "The prompt changed since" not in texts(at), "the draft is the chosen column's prompt"


def test_with_four_columns_a_try_takes_the_newest_trys_place(keyed, data_dir, prompts_dir):
    at = fitted(new_app())
    wait_for_tries(at.button(key="btn_try").click().run())
    for model in ("gpt-4.1-mini", "gpt-4.1-nano", "gpt-4o"):
        at.radio(key="wb_add_kind").set_value("Another model").run()
        at.text_input(key="wb_add_model").set_value(model).run()
        wait_for_tries(at.button(key="btn_wb_add").click().run())
    assert len(saved(at, data_dir).workbench.variants) == 4
    at.text_area(key="p_system").set_value("Shorter rules.").run()
    at.button(key="btn_try").click().run()
    assert "Try 1 made room for Try 2" in " ".join(w.value for w in at.warning)
    wait_for_tries(at)
    labels = [v.label for v in saved(at, data_dir).workbench.variants]
    assert len(labels) == 4 and "Try 2" in labels and "Try 1" not in labels


def test_try_returns_before_the_answers_land_and_they_appear_on_a_later_rerun(keyed, data_dir, prompts_dir):
    """The page no longer waits for the answers (it blocked up to 90 s in job.wait): the server is held,
    so the click's run can only end if it does not wait; the answers appear once the server lets them go."""
    at = fitted(new_app())
    keyed.configure(hold=True)
    try:
        at.button(key="btn_try").click().run()  # AppTest gives up after 60 s: a page that waited fails here
        assert not at.exception, at.exception
        assert running_tries(at) == ["Try 1"], "the try runs on, as a job"
        assert keyed.ledger() == [] and not [t for t in at.text if t.value.startswith("SIM[")]
        progress = " ".join(p.proto.text for p in at.get("progress")).replace("\\", "")  # Markdown escapes
        assert "Try 1: 0 of 5 rows answered" in progress, progress
        assert at.button(key="btn_try_stop")
        w = saved(at, data_dir)
        assert [v.label for v in w.workbench.variants] == ["Try 1"] and w.workbench.variants[0].run_id
        at.run()  # a rerun while held (as the page's timer, or a reload, does) finds the same try going
        assert running_tries(at) == ["Try 1"] and at.get("progress")
    finally:
        keyed.configure(hold=False)
    wait_for_tries(at)
    assert len([t for t in at.text if t.value.startswith("SIM[")]) == 5
    assert not at.get("progress") and len(keyed.ledger()) == 5


def test_stop_trying_keeps_what_was_answered_and_the_rest_can_be_finished(keyed, data_dir, prompts_dir):
    """20 sample rows, at most 16 workers: with the server holding every answer, no more than 16 requests
    can be out. Stop sends no more; the answers already asked for still land (they are billed anyway);
    Finish sends only the rows never sent."""
    rows = "".join(f"P{i},VP Sales,Company {i},software,Boston,50\r\n" for i in range(1, 21))
    data = ("First Name,Title,Company,Industry,City,# Employees\r\n" + rows).encode()
    at = choose_prompt(upload(new_app(), "twenty.csv", data))
    at.number_input(key="wb_n").set_value(20).run()
    at.button(key="btn_wb_sample").click().run()
    keyed.configure(hold=True)
    try:
        at.button(key="btn_try").click().run()
        assert wait_until(lambda: keyed.stats()["held_now"] >= 1), keyed.stats()
        at.button(key="btn_try_stop").click().run()
    finally:
        keyed.configure(hold=False)
    wait_for_tries(at)
    sent = len(keyed.ledger())
    assert 1 <= sent <= 16
    assert "Stopped: Cancelled" in texts(at).replace("\\", "")  # without the Markdown escapes
    assert len([t for t in at.text if t.value.startswith("SIM[")]) == sent
    wait_for_tries(at.button(key="btn_try_unfinished").click().run())
    assert len(keyed.ledger()) == 20, "only the rows never sent were sent: nothing was paid twice"
    assert "Stopped" not in texts(at) and len([t for t in at.text if t.value.startswith("SIM[")]) == 20
