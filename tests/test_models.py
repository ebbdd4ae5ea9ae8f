"""lib.models as tables: the catalog's shapes, efforts, refusals turned into fixes, and retirement dates."""

from __future__ import annotations

import datetime as dt

import pytest

from lib import models
from lib.models import shapes
from lib.models.retirement import ListedModel, parse_date

OPENAI_MAX_TOKENS = (
    "unsupported_parameter",
    "max_tokens",
    "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
)
OPENAI_TEMPERATURE = (
    "unsupported_value",
    "temperature",
    "Unsupported value: 'temperature' does not support 0.7 with this model. Only the default (1) value is supported.",
)
OPENAI_EFFORT = (
    "unsupported_value",
    "reasoning_effort",
    "Unsupported value: 'reasoning_effort' does not support 'none' with this model. "
    "Supported values are: 'low', 'medium', and 'high'.",
)
OPENAI_NO_EFFORT = (
    "unsupported_parameter",
    "reasoning_effort",
    "Unsupported parameter: 'reasoning_effort' is not supported with this model.",
)
# LiteLLM keeps OpenAI's words but puts its own code on them and no param.
LITELLM_MAX_TOKENS = ("400", "", "litellm.BadRequestError: OpenAIException - " + OPENAI_MAX_TOKENS[2])
LITELLM_DROP = (
    "400",
    "",
    "litellm.UnsupportedParamsError: openai does not support parameters: ['temperature', 'top_p'], "
    "for model=acme. To drop these, set `litellm.drop_params=True`",
)
VLLM_EXTRA = (
    "400",
    "",
    "1 validation error: body.top_p Extra inputs are not permitted, input: 'top_p'",
)
BAD_NUMBER = (
    "integer_below_min_value",
    "max_tokens",
    "Invalid 'max_tokens': integer below minimum value. Expected a value >= 1, but got 0 instead.",
)

SENT = {"model": "acme", "max_tokens": 80, "temperature": 0.7, "top_p": 0.9, "messages": []}


@pytest.mark.parametrize(
    ("model", "max_tokens", "temperature", "effort", "expected"),
    [
        ("gpt-6-luna", 80, 0.7, None, {"max_completion_tokens": 80, "reasoning_effort": "none"}),
        ("gpt-6-luna", 80, None, "medium", {"max_completion_tokens": 80, "reasoning_effort": "medium"}),
        ("gpt-6.1-terra", None, None, "minimal", {"reasoning_effort": "none"}),  # nearest, cheaper on a tie
        ("gpt-5.5", 80, 0.2, None, {"max_completion_tokens": 80, "reasoning_effort": "none"}),
        ("gpt-5-mini", 80, 0.2, None, {"max_completion_tokens": 80, "reasoning_effort": "minimal"}),
        ("o3", 50, 1.0, "none", {"max_completion_tokens": 50, "reasoning_effort": "low"}),
        ("gpt-4o-mini", 80, 0.7, "high", {"max_tokens": 80, "temperature": 0.7}),  # does not reason
        ("gpt-5-chat-latest", 80, 0.7, None, {"max_completion_tokens": 80, "temperature": 0.7}),
        ("my-azure-deployment", 80, 0.7, None, {"max_tokens": 80, "temperature": 0.7}),  # unknown: classic
    ],
)
def test_the_catalog_spells_each_family_s_request(model, max_tokens, temperature, effort, expected):
    params = models.request_params(model, max_tokens=max_tokens, temperature=temperature, effort=effort)
    assert params == {"model": model, **expected}


@pytest.mark.parametrize(
    ("refusal", "sent", "fixed", "note"),
    [
        (
            OPENAI_MAX_TOKENS,
            SENT,
            {"max_completion_tokens": 80, "temperature": 0.7, "top_p": 0.9, "reasoning_effort": "none"},
            "acme does not take max_tokens: sent as max_completion_tokens.",
        ),
        (
            OPENAI_TEMPERATURE,
            SENT,
            {"max_tokens": 80, "top_p": 0.9},
            "acme does not take a temperature: sent without it.",
        ),
        (
            OPENAI_EFFORT,
            {"model": "acme", "reasoning_effort": "none"},
            {"reasoning_effort": "low"},
            "acme does not take reasoning effort 'none': sent with 'low' (it takes low, medium, high).",
        ),
        (
            OPENAI_NO_EFFORT,
            {"model": "acme", "reasoning_effort": "none"},
            {},
            "acme does not take a reasoning effort: sent without one.",
        ),
        (
            LITELLM_MAX_TOKENS,
            SENT,
            {"max_completion_tokens": 80, "temperature": 0.7, "top_p": 0.9, "reasoning_effort": "none"},
            "acme does not take max_tokens: sent as max_completion_tokens.",
        ),
        (
            LITELLM_DROP,
            SENT,
            {"max_tokens": 80, "top_p": 0.9},
            "acme does not take a temperature: sent without it.",
        ),
        (
            VLLM_EXTRA,
            SENT,
            {"max_tokens": 80, "temperature": 0.7},
            "acme does not take top_p: sent without it.",
        ),
    ],
    ids=["max_tokens", "temperature", "effort-value", "no-effort", "litellm-rename", "litellm-drop", "vllm"],
)
def test_a_refused_parameter_becomes_a_fix(refusal, sent, fixed, note):
    code, param, message = refusal
    adjustment = shapes.fix_for(400, code, param, message, sent, shapes.Fixes())
    assert adjustment is not None and adjustment.note == note
    body = shapes.apply(sent, adjustment.fixes)
    assert (
        body == {"model": "acme", "messages": [], **fixed}
        if "messages" in sent
        else {"model": "acme", **fixed}
    )


@pytest.mark.parametrize(
    ("status", "refusal", "sent"),
    [
        (400, BAD_NUMBER, SENT),  # a bad value is the user's setting, not a parameter to rename
        (500, OPENAI_MAX_TOKENS, SENT),  # only a 400 / 422 says the request's shape is wrong
        (400, ("unsupported_parameter", "response_format", "Unsupported parameter: 'response_format'"), SENT),
        (400, OPENAI_TEMPERATURE, {"model": "acme", "max_tokens": 80}),  # not what was sent
        (400, ("model_not_found", "", "The model `acme` does not exist"), SENT),
    ],
    ids=["bad-number", "server-error", "not-droppable", "not-sent", "unknown-model"],
)
def test_other_errors_are_not_fixes(status, refusal, sent):
    code, param, message = refusal
    assert shapes.fix_for(status, code, param, message, sent, shapes.Fixes()) is None


def test_fixes_accumulate_and_survive_json():
    fixes = shapes.Fixes()
    body = dict(SENT)
    for code, param, message in (OPENAI_MAX_TOKENS, OPENAI_TEMPERATURE, OPENAI_EFFORT):
        sent = shapes.apply(SENT, fixes)
        adjustment = shapes.fix_for(400, code, param, message, sent, fixes)
        assert adjustment is not None
        fixes = adjustment.fixes
    body = shapes.apply(SENT, fixes)
    assert body == {
        "model": "acme",
        "max_completion_tokens": 80,
        "top_p": 0.9,
        "messages": [],
        "reasoning_effort": "low",
    }
    assert shapes.Fixes.from_json(fixes.to_json()) == fixes
    assert len(fixes.notes) == 3
    # the same refusal again changes nothing: it is not a fix any more
    assert shapes.fix_for(400, *OPENAI_TEMPERATURE, body, fixes) is None


@pytest.mark.parametrize(
    ("wanted", "accepted", "expected"),
    [
        ("none", ("none", "low", "medium"), "none"),
        ("none", ("low", "medium", "high"), "low"),
        ("minimal", ("none", "low"), "none"),
        ("xhigh", ("low", "medium", "high"), "high"),
        ("max", ("minimal", "low", "medium", "high"), "high"),
        ("medium", (), None),
    ],
)
def test_nearest_effort(wanted, accepted, expected):
    assert models.nearest_effort(wanted, accepted) == expected


DAY = dt.date(2026, 12, 5)


@pytest.mark.parametrize(
    ("model", "listing", "state", "replacement", "words"),
    [
        ("gpt-6-luna", None, "current", None, ""),
        (
            "gpt-4o-mini",
            None,
            "retiring",
            "gpt-6-luna",
            "gpt-4o-mini shuts down on 14 Jan 2027 (in 40 days).",
        ),
        ("gpt-4o-mini-2024-07-18", None, "retiring", "gpt-6-luna", "shuts down on 14 Jan 2027"),
        ("gpt-5-nano", None, "retiring", "gpt-6-luna", "(in 6 days)"),
        ("o4-mini", None, "retired", "gpt-6-luna", "was shut down on 23 Oct 2026 and no longer answers"),
        # the endpoint's own date wins over the catalog's, either way
        (
            "gpt-4o-mini",
            [ListedModel("gpt-4o-mini", dt.date(2026, 12, 1))],
            "retired",
            "gpt-6-luna",
            "1 Dec 2026",
        ),
        (
            "acme-1",
            [ListedModel("acme-1", dt.date(2026, 12, 6))],
            "retiring",
            None,
            "tomorrow). Pick a current",
        ),
        ("acme-1", [ListedModel("acme-2", dt.date(2026, 1, 1))], "current", None, ""),
    ],
)
def test_retirement(model, listing, state, replacement, words):
    status = models.retirement(model, listing=listing, on=DAY)
    assert status.state == state
    assert status.replacement == replacement
    assert words in status.words(DAY)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2027-01-14", dt.date(2027, 1, 14)),
        (None, None),
        ("", None),
        ("soon", None),
        (1800000000, dt.date(2027, 1, 15)),
    ],
)
def test_shutdown_dates_as_servers_write_them(value, expected):
    assert parse_date(value) == expected


def test_the_catalog_names_a_current_default():
    default = models.default_model()
    assert models.retirement(default, on=DAY).state == "current"
    assert models.model_info(default).known
    assert models.effort_for(default, None) == "none"
