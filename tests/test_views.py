"""Plain helpers the pages use: text that goes through Streamlit's Markdown elements is escaped."""

from __future__ import annotations

import re

import pytest

from lib import engine
from lib.engine.client import choose_connection
from lib.store import Store
from lib.views import connection_text, labels, live_table, run_data, run_status
from lib.views.labels import md_escape
from lib.workspace import LeadSource, Workspace

# An unescaped Markdown construct: one not preceded by a backslash.
ACTIVE = [
    re.compile(r"(?<!\\)!(?<!\\)\[[^\]]*(?<!\\)\]\((?<!\\)"),  # image ![alt](
    re.compile(r"(?<!\\)\[[^\]]*(?<!\\)\]\("),  # link [text](
    re.compile(r"(?<!\\)\$[^$]+(?<!\\)\$"),  # LaTeX $...$
    re.compile(r"(?<!\\)\*\*[^*]+(?<!\\)\*\*"),  # bold
    re.compile(r"(?<!\\)<[a-z]"),  # an HTML tag
]


@pytest.mark.parametrize(
    "text",
    [
        "Unknown column ![x](http://127.0.0.1:9/x.png)",
        "[click me](javascript:alert(1))",
        "costs $5 and $6",
        "**urgent**",
        "<img src=x onerror=alert(1)>",
        "back\\slash ![a](b)",
    ],
)
def test_markdown_in_messages_is_neutralised(text):
    escaped = md_escape(text)
    assert not any(p.search(escaped) for p in ACTIVE), escaped
    assert re.sub(r"\\(.)", r"\1", escaped) == text  # removing the escapes gives the text back exactly


def test_plain_words_are_untouched():
    assert md_escape("The disk is full, free some space") == "The disk is full, free some space"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (None, "unpriced"),
        (0, "$0"),
        (0.0000405, "$0.0000405"),
        (0.00005, "$0.00005"),
        (0.0097, "$0.0097"),
        (0.00970001, "$0.0097"),
        (0.2512, "$0.2512"),
        (1.0, "$1.00"),
        (12.345, "$12.35"),
        (1234567.8, "$1,234,567.80"),
    ],
)
def test_money_keeps_enough_significant_digits(value, shown):
    assert labels.money(value) == shown


def test_a_budget_below_the_quote_is_named_before_start():
    assert run_status.budget_warning(None, 0.1, 0.2) is None
    assert run_status.budget_warning(5.0, 0.1, 0.2) is None
    assert "below the lowest quote" in run_status.budget_warning(0.05, 0.1, 0.2)
    assert "inside the quote" in run_status.budget_warning(0.15, 0.1, 0.2)


ENV = {"OPENAI_API_KEY": "sk-env-key-00000001", "OPENAI_BASE_URL": "http://env.example/v1"}


@pytest.mark.parametrize(
    ("demo", "typed_key", "typed_url", "env", "url", "source", "says"),
    [
        (
            True,
            "sk-typed-key-0000002",
            "http://typed/v1",
            ENV,
            "http://demo/v1",
            "offline demo",
            "offline demo",
        ),
        (
            False,
            "sk-typed-key-0000002",
            "http://typed/v1",
            ENV,
            "http://typed/v1",
            "typed in this session",
            "typed",
        ),
        (False, "sk-typed-key-0000002", "", ENV, "http://env.example/v1", "typed in this session", "typed"),
        (False, None, "http://env.example/v1/", ENV, "http://env.example/v1/", ".env / environment", ".env"),
        (False, None, "", ENV, "http://env.example/v1", ".env / environment", ".env"),
        (
            False,
            None,
            "",
            {"OPENAI_API_KEY": "sk-env-key-00000001"},
            "https://api.openai.com/v1",
            ".env / environment",
            ".env",
        ),
        # The environment's key never goes to an endpoint someone typed (or put in a shared workspace).
        (False, None, "http://typed/v1", ENV, "", "", "needs a key typed in this session"),
        (
            False,
            None,
            "http://typed/v1",
            {"OPENAI_API_KEY": "sk-env-key-00000001"},
            "",
            "",
            "only sent to https://api.openai.com/v1",
        ),
        (False, None, "", {}, "", "", "No API key"),
    ],
)
def test_the_connection_is_the_one_the_session_chose(demo, typed_key, typed_url, env, url, source, says):
    conn = choose_connection(
        demo=demo, demo_url="http://demo/v1", typed_key=typed_key, typed_base_url=typed_url, env=env
    )
    assert (conn.url, conn.source) == (url, source)
    line = conn.sending_line()
    assert says in line and (url in line if url else conn.endpoint is None)
    for key in ("sk-typed-key-0000002", "sk-env-key-00000001"):
        assert key not in line and key not in repr(conn)


@pytest.mark.parametrize(
    ("columns", "ids"),
    [
        (
            ["First Name", "Last Name", "Email", "Company Name", "Title"],
            ["First Name", "Last Name", "Company Name"],
        ),
        (["email", "account_name", "full name"], ["full name", "account_name"]),
        (["Person Linkedin Url", "Email"], ["Email"]),
        (["Zip", "Score"], ["Zip"]),
        ([], []),
    ],
)
def test_identifying_columns_are_a_name_and_a_company(columns, ids):
    assert live_table.suggest_id_columns(columns) == ids


def test_answers_come_right_after_the_identifying_columns():
    columns = [
        "Email",
        "First Name",
        "Company",
        "City",
        "icebreaker",
        "enrich_status",
        "enrich_error",
        "edited",
    ]
    order = live_table.column_order(columns, ["icebreaker"], ["First Name", "Company"])
    assert order == [
        "First Name",
        "Company",
        "icebreaker",
        "edited",
        "enrich_status",
        "enrich_error",
        "Email",
        "City",
    ]


@pytest.mark.parametrize(
    ("model", "aliases", "label"),
    [
        ("gpt-4o-mini", None, "gpt-4o-mini · $0.15 in / $0.60 out per 1M tokens"),
        ("gpt-4o-mini-json", None, "gpt-4o-mini-json · unpriced"),
        (
            "gpt-4o-mini-json",
            {"gpt-4o-mini-json": "gpt-4o-mini"},
            "gpt-4o-mini-json · priced as gpt-4o-mini · $0.15 in / $0.60 out per 1M tokens",
        ),
    ],
)
def test_price_label_says_what_a_name_is_priced_as(model, aliases, label):
    from lib.views.labels import price_label

    assert price_label(model, aliases) == label


@pytest.mark.parametrize(
    ("chosen", "env_has_key", "demo"),
    [(None, False, True), (None, True, False), (True, True, True), (False, False, False)],
)
def test_the_demo_is_on_until_a_key_is_configured_unless_the_user_chose(chosen, env_has_key, demo):
    assert connection_text.demo_mode(chosen, env_has_key) is demo


@pytest.mark.parametrize(
    ("demo", "typed_key", "typed_url", "env", "status"),
    [
        (True, None, "", {}, "Offline demo: answers are simulated"),
        (False, None, "", {}, "No API key. Type one below"),
        (False, None, "http://typed/v1", ENV, "needs a key typed in this session"),
        (False, "sk-typed-key-0000002", "http://typed/v1", ENV, "Sending to `http://typed/v1` with the key typed"),
        (False, None, "", ENV, "Sending to `http://env.example/v1` with the key from .env"),
    ],
)  # fmt: skip
def test_the_key_status_says_where_requests_go_with_the_url_as_code(demo, typed_key, typed_url, env, status):
    conn = choose_connection(
        demo=demo, demo_url="http://demo/v1", typed_key=typed_key, typed_base_url=typed_url, env=env
    )
    text = connection_text.key_status(conn)
    assert status in re.sub(r"\\(.)", r"\1", text), text  # as read once the Markdown escapes are gone
    assert "sk-typed-key-0000002" not in text and "sk-env-key-00000001" not in text


@pytest.mark.parametrize(
    ("columns", "outputs", "chosen", "order", "ids", "pinned"),
    [
        (["Email", "First Name", "Company", "icebreaker", "enrich_row_id"], ["icebreaker"], None,
         ["First Name", "Company", "icebreaker", "Email"], ["First Name", "Company"], True),
        (["First Name", "Company", "City", "a", "b", "c"], ["a", "b", "c"], ["City"],
         ["City", "a", "b", "c", "First Name", "Company"], ["City"], True),
        (["First Name", "Company", "City", "a", "b", "c"], ["a", "b", "c"], None,
         ["First Name", "Company", "a", "b", "c", "City"], ["First Name", "Company"], False),  # 5 > 4: scroll
        (["Zip", "a"], ["a", "missing"], [], ["a", "Zip"], [], True),
    ],
)  # fmt: skip
def test_a_grid_pins_the_identifying_columns_and_the_answers_when_they_fit(
    columns, outputs, chosen, order, ids, pinned
):
    layout = live_table.grid_layout(columns, outputs, chosen)
    assert (layout.order, layout.ids, layout.pin_answers) == (order, ids, pinned)
    assert layout.answers == [c for c in outputs if c in columns]


def test_a_runs_meta_names_the_file_how_it_was_read_and_the_prompt():
    w = Workspace(id="w", lead=LeadSource("leads.csv", "d" * 64, 10, encoding="cp1252"))
    meta = run_data.run_meta(w, "cp1252", demo=True, prompt={"prompt_name": "Icebreaker"}, sample=True)
    assert meta == {
        "input_name": "leads.csv",
        "demo": True,
        "input_encoding": "cp1252",
        "input_encoding_chosen": True,
        "prompt_name": "Icebreaker",
        "sample": True,
    }
    assert run_data.run_meta(Workspace(id="w"), None, demo=False, prompt={})["input_name"] is None


def test_a_runs_rows_results_and_edits_come_from_the_job_then_from_the_store(sim, data_dir):
    from tests.engine_helpers import leads, run

    store = Store(data_dir)
    assert run_data.rows_of(store, None) == [] and run_data.rows_of(store, "no-such-run") == []
    job = run(sim, leads(3), data_dir)
    assert engine.get_job(job.id) is None, "started outside the registry: read from the store"
    assert [r.status for r in run_data.rows_of(store, job.id)] == ["succeeded"] * 3
    assert len(run_data.sample_tokens(store, job.id)) == 3 and all(run_data.sample_tokens(store, job.id))
    answer = live_table.output_names(store.run(job.id).meta)[0]
    run_data.save_edits(store, job.id, {2: {answer: "Edited."}})
    frame, meta, edits = run_data.results_of(store, job.id)
    assert edits == {2: {answer: "Edited."}} and frame.loc[2, answer] == "Edited."
    assert meta == store.run(job.id).meta
    store.close()


def test_the_spend_line_says_how_much_of_the_cost_is_an_estimate():
    from dataclasses import replace

    from lib.engine import Snapshot
    from lib.views.run_status import spend_text

    snap = Snapshot("r", "paused", None, 10, 5, 0, 0, 5, 0, 0, 100, 20, 0, 0, 0.012, True, 0.05, 6, 0, 1, 0,
                    3.0, 1.0, None, (), (), 1)  # fmt: skip
    assert "estimated" not in spend_text(snap)
    line = spend_text(replace(snap, estimated_usd=0.004))
    assert line.startswith("Spent $0.0120 of $0.0500 budget (up to $0.0040 of it estimated")
