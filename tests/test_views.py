"""Plain helpers the pages use: text that goes through Streamlit's Markdown elements is escaped."""

from __future__ import annotations

import re

import pytest

from lib.engine.client import choose_connection
from lib.views import labels, live_table, run_status
from lib.views.labels import md_escape

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


def test_the_spend_line_says_how_much_of_the_cost_is_an_estimate():
    from dataclasses import replace

    from lib.engine import Snapshot
    from lib.views.run_status import spend_text

    snap = Snapshot("r", "paused", None, 10, 5, 0, 0, 5, 0, 0, 100, 20, 0, 0, 0.012, True, 0.05, 6, 0, 1, 0,
                    3.0, 1.0, None, (), (), 1)  # fmt: skip
    assert "estimated" not in spend_text(snap)
    line = spend_text(replace(snap, estimated_usd=0.004))
    assert line.startswith("Spent $0.0120 of $0.0500 budget (up to $0.0040 of it estimated")
