"""The Streamlit app under AppTest: upload, prompt checks, quote, sample, run, edits, exports, key safety, demo."""

from __future__ import annotations

import io
import os

import openpyxl
import pytest
from streamlit.testing.v1 import AppTest

from lib import engine, export
from lib.engine import runs
from lib.prompts import templates
from lib.prompts.library import PromptLibrary
from lib.sim import expected_reply
from lib.store import Store
from tests.apptest_helpers import (
    APP,
    all_text,
    choose_prompt,
    edit_workspace,
    goto,
    lead_df,
    new_app,
    upload,
    wait_for_run,
    wait_for_tries,
    workspace,
)

pytestmark = pytest.mark.usefixtures("app_env")


def xlsx_bytes(sheets: dict[str, list[list[str]]]) -> bytes:
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for row in rows:
            ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def test_upload_csv_shows_what_was_detected():
    """Encoding, delimiter, profile and the table kept in session state."""
    at = upload(new_app())
    detected = "\n".join(t.value for t in at.text)
    assert "4 rows, 6 columns" in detected
    assert "Encoding: UTF-8." in detected and "Delimiter: comma" in detected
    profile = at.dataframe[-1].value
    assert list(profile["column"])[:2] == ["First Name", "Title"]
    assert profile.set_index("column").loc["Industry", "filled"] == 0.75  # drawn as 75%, not 7,500%
    assert lead_df(at).shape == (4, 6)


def test_xlsx_sheet_choice():
    data = xlsx_bytes(
        {
            "Empty": [],
            "Leads": [["First Name", "Company"], ["Ann", "Acme"], ["Bob", "Globex"]],
            "Other": [["Name", "Zip"], ["Li", "02134"]],
        }
    )
    at = upload(new_app(), "leads.xlsx", data, export.MEDIA_TYPES["xlsx"])
    assert at.selectbox(key="d_sheet").options == ["(first sheet with a table)", "Empty", "Leads", "Other"]
    assert list(lead_df(at).columns) == ["First Name", "Company"]  # not the empty first sheet
    at.selectbox(key="d_sheet").set_value("Other").run()
    df = lead_df(at)
    assert list(df.columns) == ["Name", "Zip"] and df.iloc[0]["Zip"] == "02134"


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("leads.xlsx", b"this is not a workbook", "xlsx"),
        ("leads.csv", b"", "empty"),
        ("leads.csv", b"a,b\r\n1,2\r\n3,4,5,6\r\n", "line 3"),
    ],
)
def test_unreadable_file_gives_a_clear_error(name, data, expected):
    at = upload(new_app(), name, data)
    assert at.error, "an error box is shown"
    assert expected.lower() in "\n".join(t.value for t in at.text).lower()
    assert lead_df(at) is None and not at.success


def test_ragged_rows_can_be_skipped():
    at = upload(new_app(), "leads.csv", b"a,b\r\n1,2\r\n3,4,5,6\r\n7,8\r\n")
    at.radio(key="d_ragged").set_value("skip").run()
    assert lead_df(at).shape == (2, 2)
    assert "ragged" in "\n".join(t.value for t in at.text)


def test_missing_placeholder_is_flagged_with_a_suggestion():
    at = choose_prompt(upload(new_app()), "(blank prompt)")
    at.text_area(key="p_template").set_value("Write to {{ Compnay }} about {{ Title }}").run()
    fit = next(d for d in at.data_editor if "Placeholder" in d.value.columns).value.set_index("Placeholder")
    assert fit.loc["Compnay", "Column in this file"] == "Company"
    assert "No column 'Compnay': 'Company' looks like it" in fit.loc["Compnay", "Note"]
    assert at.button(key="btn_try").proto.disabled, "a placeholder without a column cannot be tried"
    at.button(key="btn_fit_use").click().run()
    assert not at.button(key="btn_try").proto.disabled
    at.text_area(key="p_template").set_value("Write to {{ Company }} about {{ Title }}").run()
    assert at.success and "Compnay" not in "\n".join(t.value for t in at.text)
    assert {m.label for m in at.metric} >= {"Input tokens", "Cost"}


def test_prompt_page_quotes_and_previews_exact_messages():
    at = choose_prompt(upload(new_app()))
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Rows to send"] == "4"
    assert metrics["Cost"].startswith("$")
    codes = [c.value for c in at.code]
    assert any("<data>Ann</data>" in c for c in codes), "the preview shows the rendered row, fenced"


def test_sample_run_edits_export_and_history(keyed):
    at = choose_prompt(upload(new_app()))
    at.number_input(key="wb_n").set_value(2).run()
    at.button(key="btn_wb_sample").click().run()
    wait_for_tries(at.button(key="btn_try").click().run())
    assert not at.exception
    answers = [t.value for t in at.text if t.value.startswith("SIM[")]
    assert len(answers) == 2
    goto(at, "run")
    assert "answer lengths of the sample" in " ".join(c.value for c in at.caption)

    at.button(key="btn_start").click().run()
    run_id = workspace(at).run_id
    assert wait_for_run(at) == "finished"
    job = engine.get_job(run_id)
    assert job is not None and job.snapshot().succeeded == 4

    # Answers are exactly what the local server says for each row's request.
    spec = PromptLibrary().load("Icebreaker")
    table = at.data_editor[0].value
    for row_id, row in table.iterrows():
        body = job.plan.items[[i.row_id for i in job.plan.items].index(row_id)].body
        assert row["icebreaker"] == expected_reply(body["messages"], body["model"]).strip()
        assert row["First Name"] == job.plan.inputs[row_id]["First Name"]
    assert spec.output_columns == ("icebreaker",)

    # An edit made in the grid (seeded as the browser would send it) lands on the job and in every export.
    at.session_state[f"editor_{run_id}"] = {
        "edited_rows": {1: {"icebreaker": "=HYPERLINK(edited by hand)"}},
        "added_rows": [],
        "deleted_rows": [],
    }
    at.run()
    assert job.edits() == {2: {"icebreaker": "=HYPERLINK(edited by hand)"}}
    store = Store(os.environ["LEAD_STUDIO_DATA_DIR"])
    frame = runs.stored_results(store, run_id)
    assert frame.loc[2, "icebreaker"] == "=HYPERLINK(edited by hand)"
    assert "'=HYPERLINK(edited by hand)" in export.export_bytes(frame, "csv").decode("utf-8-sig")
    assert b"=HYPERLINK(edited by hand)" in export.export_bytes(frame, "json")

    goto(at, "results")
    assert at.data_editor[0].value.loc[2, "edited"] == "icebreaker"
    labels = {b.label for b in at.download_button}
    assert labels == {"Download CSV", "Download XLSX", "Download JSON"}

    goto(at, "history")
    history = at.dataframe[0].value
    assert run_id in set(history["run id"]) and len(history) == 2  # the sample and the run
    assert "finished" in set(history["status"])


def test_double_start_makes_one_run(keyed):
    """A second Start click whose first run lost its attachment (interrupted rerun) re-attaches: one run."""
    keyed.configure(latency_ms=2500)  # still in flight at the second click, even on a loaded machine
    at = choose_prompt(upload(new_app()))
    goto(at, "run")
    at.button(key="btn_start").click().run()
    first = workspace(at).run_id
    job = engine.get_job(first)
    assert job is not None and job.active
    edit_workspace(at, lambda w: setattr(w, "run_id", None))  # the attachment is lost
    at.run()
    at.button(key="btn_start").click().run()
    assert workspace(at).run_id == first and engine.get_job(first) is job
    assert wait_for_run(at) == "finished"
    assert len(Store(os.environ["LEAD_STUDIO_DATA_DIR"]).runs()) == 1


def test_typed_key_stays_in_its_session(sim, monkeypatch):
    secret = "sk-typed-secret-ABCDEF123456"
    a = new_app()
    a.toggle(key="demo_mode").set_value(False).run()
    a.text_input(key="api_key_input").input(secret).run()
    a.text_input(key="base_url_input").input(sim.url).run()
    a = choose_prompt(upload(a))
    wait_for_tries(a.button(key="btn_try").click().run())
    assert len([t for t in a.text if t.value.startswith("SIM[")]) == 4
    shown = all_text(a)
    assert "…3456" in shown and secret not in shown  # masked in the status line; no element echoes it
    assert secret not in os.environ.values()
    assert secret not in str(dict(a.query_params))

    b = new_app()
    b = choose_prompt(upload(b))
    goto(b, "run")
    assert secret not in all_text(b)
    assert secret not in str(dict(b.query_params))
    assert "api_key_input" not in b.session_state


def test_offline_demo_without_a_key_completes_a_run():
    at = new_app()
    assert at.toggle(key="demo_mode").value is True
    assert "Offline demo" in " ".join(c.value for c in at.sidebar.caption)
    at = choose_prompt(upload(at))
    goto(at, "run")
    at.button(key="btn_start").click().run()
    assert wait_for_run(at) == "finished"
    assert any("Simulated answers" in w.value for w in at.warning)
    assert all(at.data_editor[0].value["enrich_status"] == "succeeded")


def test_empty_states_link_to_the_right_page():
    at = new_app()
    for page in ("prompt", "run", "results", "history"):
        goto(at, page)
        assert at.info, page
    goto(at, "run")
    assert any("Upload a lead list first" in i.value for i in at.info)
    assert templates.placeholders("{{ A }}") == ["A"]


# --- the workspace under AppTest: what a page shows comes from it, and every page change keeps it -------


def test_leaving_pages_keeps_the_prompt_settings_and_file():
    """Data → Prompt → Run (settings typed) → Results → History → Run: nothing is reset."""
    at = choose_prompt(upload(new_app()))
    goto(at, "run")
    assert at.number_input(key="r_max_tokens").value == 80  # prompts/icebreaker.yaml
    assert "from the prompt 'Icebreaker'" in " ".join(c.value for c in at.caption)
    at.number_input(key="r_workers").set_value(3).run()
    at.number_input(key="r_budget").set_value(2.5).run()
    for page in ("results", "history", "data", "prompt"):
        goto(at, page)
    assert at.text_area(key="p_template").value.startswith("Write the opening line of a cold email")
    goto(at, "run")
    assert at.number_input(key="r_workers").value == 3
    assert at.number_input(key="r_budget").value == 2.5
    assert at.number_input(key="r_max_tokens").value == 80
    saved = workspace(at)
    assert (saved.settings.workers, saved.settings.budget_usd, saved.draft.name) == (3, 2.5, "Icebreaker")
    assert saved.lead.file_name == "leads.csv"


def test_a_new_session_on_the_same_url_opens_the_same_workspace():
    """A reload is a new session with only the URL: it finds the file, the prompt and the settings."""
    at = choose_prompt(upload(new_app()))
    goto(at, "run")
    at.number_input(key="r_workers").set_value(5).run()
    ws_id = at.session_state["ws_id"]
    again = AppTest.from_file(APP, default_timeout=60)
    again.query_params["ws"] = ws_id
    again.run()
    goto(again, "run")
    assert not again.info, [i.value for i in again.info]  # no "Upload a lead list first"
    assert again.number_input(key="r_workers").value == 5
    assert again.session_state["ws_id"] == ws_id


@pytest.mark.parametrize(
    ("budget", "expect"),
    [
        (None, None),
        (0.000001, "below the lowest quote"),
        (1000.0, None),
    ],
)
def test_a_budget_below_the_quote_warns_before_start(budget, expect):
    at = choose_prompt(upload(new_app()))
    goto(at, "run")
    if budget is not None:
        at.number_input(key="r_budget").set_value(budget).run()
    warnings = " ".join(w.value for w in at.warning)
    if expect is None:
        assert "budget" not in warnings.lower()
    else:
        assert expect in warnings


def test_a_header_only_file_is_not_shown_as_ready():
    at = upload(new_app(), "leads.csv", b"First Name,Company\r\n")
    assert not at.success
    assert any("no rows" in w.value for w in at.warning)
    goto(at, "run")
    assert any("no rows" in w.value for w in at.warning)  # and nothing can be started or sampled
    assert not [b for b in at.button if b.key in ("btn_start", "btn_try")]


def test_a_rejected_upload_replaces_the_previous_file_and_says_so():
    at = upload(new_app())
    at.file_uploader(key="upload").set_value(("broken.csv", b"a,b\r\n1,2\r\n3,4,5,6\r\n", "text/csv")).run()
    assert at.error and "broken\\.csv" in at.error[0].value  # the file name, Markdown-escaped
    assert not at.success, "no green 'ready' for the file that was replaced"


def test_history_tells_a_sample_from_a_run_and_names_the_file(keyed):
    at = choose_prompt(upload(new_app()))
    at.number_input(key="wb_n").set_value(1).run()
    at.button(key="btn_wb_sample").click().run()
    wait_for_tries(at.button(key="btn_try").click().run())
    goto(at, "history")
    history = at.dataframe[0].value
    assert list(history["kind"]) == ["sample"] and list(history["file"]) == ["leads.csv"]


def test_deleting_a_workspace_starts_an_empty_one():
    at = upload(new_app())
    first = at.session_state["ws_id"]
    at.button(key="btn_ws_delete").click().run()
    assert at.session_state["ws_id"] != first
    assert workspace(at).lead is None
    assert any("deleted" in w.value for w in at.warning)


def test_new_and_switching_workspaces_change_what_the_tab_shows():
    at = upload(new_app())
    first = at.session_state["ws_id"]
    at.button(key="btn_ws_new").click().run()
    second = at.session_state["ws_id"]
    assert second != first and at.query_params["ws"] == second
    assert workspace(at).lead is None
    at.button(key=f"btn_ws_{first}").click().run()  # back to the first, listed because it has a file
    assert at.session_state["ws_id"] == first and at.query_params["ws"] == first
    assert workspace(at).lead.file_name == "leads.csv"


def test_run_page_tier_choice_is_kept_and_the_live_panel_shows_rows_per_tier(keyed):
    keyed.configure(p_flex_unavailable=0.3)
    at = choose_prompt(upload(new_app()))
    edit_workspace(at, lambda w: w.set_setting("model", "gpt-5-mini"))
    goto(at, "run")
    paths = _paths_table(at)
    assert list(paths["Path"]) == ["standard", "flex", "batch"]
    assert paths["Cost"].str.startswith("$").all()
    at.selectbox(key="r_tier").set_value("flex").run()
    at.checkbox(key="r_flex_fallback").check().run()
    w = workspace(at)
    assert (w.settings.service_tier, w.settings.flex_fallback) == ("flex", True)
    goto(at, "data")  # leave and come back: the choice is the workspace's, not the widget's
    goto(at, "run")
    assert at.selectbox(key="r_tier").value == "flex" and at.checkbox(key="r_flex_fallback").value
    at.button(key="btn_start").click().run()
    assert wait_for_run(at) == "finished"
    job = engine.get_job(workspace(at).run_id)
    assert job.settings.service_tier == "flex" and job.plan.meta["service_tier"] == "flex"
    assert {e["service_tier"] for e in keyed.ledger()} == {"flex"}
    captions = " ".join(c.value for c in at.caption)
    assert "flex: 4 rows" in captions


def test_the_quote_notes_reused_rows_and_flex_is_not_offered_where_the_model_has_none(keyed):
    leads = LEADS_TWICE
    at = choose_prompt(upload(new_app(), data=leads))
    goto(at, "run")
    paths = _paths_table(at)
    assert paths.loc[paths["Path"] == "flex", "Cost"].item().startswith("$")  # gpt-6-luna has flex
    at.selectbox(key="model").set_value("gpt-4.1-mini").run()
    paths = _paths_table(at)
    assert paths.loc[paths["Path"] == "flex", "Cost"].item() == "not offered"  # gpt-4.1-mini: no flex
    assert any("reuse its answer" in c.value for c in at.caption)


LEADS_TWICE = (
    b"First Name,Title,Company,Industry,City,# Employees\r\n"
    b"Ann,VP Sales,Acme,software,Boston,50\r\n"
    b"Ann,VP Sales,Acme,software,Boston,50\r\n"
    b"Bob,CEO,Globex,retail,Austin,10\r\n"
)


def _paths_table(at):
    """The Run page's table of paths (AppTest does not expose a dataframe's key)."""
    return next(d.value for d in at.dataframe if "Path" in d.value.columns)
