"""Issue 24: the Responses API as a second way to send a row, web research with sources, one answer per
company, and their cost, against the project's simulator over real HTTP with the real SDK.

Tables first (the request and answer in the Responses API's terms, the API choice, company keys, packed
citations), then whole runs: the same 300 rows through either API, web research over a list where leads
share companies, a budget between the best and the worst case, the Batch API, a crash on either API, the
command line, and the homepage reader's one reading per site.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

from lib import batch, engine, export
from lib.cost import pricing, quote
from lib.engine import runs, transports
from lib.engine.admission import RunPrices
from lib.engine.governor import Governor
from lib.engine.outcome import Citation
from lib.engine.transports import responses
from lib.leads.company import company_key
from lib.prompts import packing, research
from lib.prompts.library import PromptLibrary, PromptLibraryError, parse_spec
from lib.prompts.templates import PromptSpec
from lib.sim import SimConfig, SimProcess, websearch
from lib.store import Source, Store
from lib.views import prompt_draft
from lib.web import FetchSettings, WebJob, WebSettings
from tests import web_sites as W
from tests.conftest import SIM_TODAY
from tests.engine_helpers import wait_until

ROOT = Path(__file__).resolve().parent.parent
MODEL = "gpt-6-luna"
PLAIN = PromptSpec(
    name="plain", template="Write one line about {{ Company }} ({{ Website }}) for {{ First Name }}."
)
STRUCTURED = PromptSpec(
    name="structured",
    template="Company: {{ Company }}\nWebsite: {{ Website }}",
    output_columns=("summary", "fit"),
)
RESEARCH = PromptLibrary().load("company-research")


def people(n: int, companies: int | None = None) -> pd.DataFrame:
    """n leads; with `companies`, lead i works at company i % companies, whose website each lead's row
    writes its own way (scheme, www., case, a trailing slash), and whose name with or without its legal form."""
    companies = companies or n
    sites = ["https://www.firm{k}.io/", "firm{k}.io", "http://FIRM{k}.io", "https://firm{k}.io/about"]
    names = ["Firm{k} Inc.", "Firm{k}", "FIRM{k}, Inc", "Firm{k}"]
    rows = {"First Name": [], "Company": [], "Website": []}
    for i in range(n):
        k, way = i % companies, (i // companies) % len(sites)
        rows["First Name"].append(f"Person{i}")
        rows["Company"].append(names[way].format(k=k))
        rows["Website"].append(sites[way].format(k=k))
    df = pd.DataFrame(rows, dtype="string")
    df.index = pd.RangeIndex(1, n + 1, name="row_id")
    return df


def start(sim, plan, data_dir, *, settings=None, key="sk-test-research") -> engine.Job:
    return engine.Job(
        plan,
        endpoint=engine.Endpoint(api_key=key, base_url=sim.url),
        settings=settings or engine.RunSettings(workers=16, timeout_s=10, transport=plan.meta["api"]),
        store=Store(data_dir),
        governor=Governor(),
    ).start()


def bill(ledger: list[dict]) -> float:
    """What the server billed: each entry's tokens at the model's price for its tier, plus its web search
    calls at the price the server charged per call."""
    total = 0.0
    for e in ledger:
        tier = "batch" if e.get("batch") else (e.get("service_tier") or "default")
        price = pricing.price_for(e["model"], tier=tier)
        usage = pricing.Usage(
            e["prompt_tokens"], e["completion_tokens"], e["cached_tokens"], 0, e.get("cache_write_tokens", 0)
        )
        total += pricing.cost(usage, price) + e.get("web_search_calls", 0) * e.get("web_search_call_price", 0)
    return total


# ----- the request and the answer in the Responses API's terms ------------------------------------------------

SYSTEM, USER = {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Acme"}
SCHEMA = {"name": "lead", "strict": True, "schema": {"type": "object", "properties": {}}}


@pytest.mark.parametrize(
    "chat, sent",
    [
        (
            {"model": "m", "messages": [SYSTEM, USER], "max_completion_tokens": 200},
            {"model": "m", "input": [SYSTEM, USER], "max_output_tokens": 200, "store": False},
        ),
        (
            {"model": "m", "messages": [USER], "max_tokens": 5, "temperature": 0.2},
            {"model": "m", "input": [USER], "max_output_tokens": 16, "temperature": 0.2, "store": False},
        ),
        (
            {"model": "m", "messages": [USER], "reasoning_effort": "none", "prompt_cache_key": "k"},
            {
                "model": "m",
                "input": [USER],
                "reasoning": {"effort": "none"},
                "prompt_cache_key": "k",
                "store": False,
            },
        ),
        (
            {
                "model": "m",
                "messages": [USER],
                "response_format": {"type": "json_schema", "json_schema": SCHEMA},
            },
            {
                "model": "m",
                "input": [USER],
                "text": {
                    "format": {
                        "type": "json_schema",
                        "name": "lead",
                        "schema": SCHEMA["schema"],
                        "strict": True,
                    }
                },
                "store": False,
            },
        ),
        (
            {
                "model": "m",
                "messages": [USER],
                "response_format": {"type": "json_object"},
                "service_tier": "flex",
            },
            {
                "model": "m",
                "input": [USER],
                "text": {"format": {"type": "json_object"}},
                "service_tier": "flex",
                "store": False,
            },
        ),
        (
            {"model": "m", "messages": [USER], "tools": [{"type": "web_search"}], "max_tool_calls": 3},
            {
                "model": "m",
                "input": [USER],
                "tools": [{"type": "web_search"}],
                "max_tool_calls": 3,
                "store": False,
            },
        ),
    ],
    ids=["plain", "max-16", "effort-cache-key", "json-schema", "json-object-flex", "web-search"],
)
def test_a_chat_body_is_sent_in_the_responses_apis_terms(chat, sent):
    assert responses.to_responses(chat) == sent


def _response(**fields) -> dict:
    base = {"id": "resp_1", "object": "response", "status": "completed", "output": [], "usage": {}}
    return {**base, **fields}


def _message(*parts) -> dict:
    return {"type": "message", "role": "assistant", "content": list(parts)}


def _text(text: str, *notes) -> dict:
    return {"type": "output_text", "text": text, "annotations": list(notes)}


def _cite(start: int, end: int, url: str, title: str = "t") -> dict:
    return {"type": "url_citation", "start_index": start, "end_index": end, "url": url, "title": title}


@pytest.mark.parametrize(
    "data, text, finish, calls, urls",
    [
        (_response(output=[_message(_text("Hi."))]), "Hi.", "stop", 0, []),
        (
            _response(status="incomplete", incomplete_details={"reason": "max_output_tokens"}, output=[]),
            None,
            "length",
            0,
            [],
        ),
        (
            _response(
                output=[
                    {"type": "web_search_call", "status": "completed"},
                    _message(
                        _text(
                            "A [a.com](https://a.com/x?utm_source=openai).",
                            _cite(2, 44, "https://a.com/x?utm_source=openai"),
                        )
                    ),
                ],
                tool_usage={"web_search": {"num_requests": 3}},  # a hidden sub-search is billed too
            ),
            "A [a.com](https://a.com/x?utm_source=openai).",
            "stop",
            3,
            ["https://a.com/x"],
        ),
        (  # two parts: the second part's offsets count from where it starts in the whole text
            _response(
                output=[
                    _message(_text("One. "), _text("Two [b](https://b.io).", _cite(4, 20, "https://b.io")))
                ]
            ),
            "One. Two [b](https://b.io).",
            "stop",
            0,
            ["https://b.io"],
        ),
        (  # no tool_usage at all (a server that does not report it): the visible searches at least
            _response(
                output=[{"type": "web_search_call"}, {"type": "web_search_call"}, _message(_text("x"))]
            ),
            "x",
            "stop",
            2,
            [],
        ),
    ],
    ids=["plain", "cut-short", "cited", "two-parts", "no-tool-usage"],
)
def test_an_answer_is_read_into_text_finish_billed_calls_and_sources(data, text, finish, calls, urls):
    answer = responses.parse(data)
    assert (answer.text, answer.finish, answer.usage.web_search_calls) == (text, finish, calls)
    assert [c.source.url for c in answer.citations] == urls
    for c in answer.citations:  # the quoted span is the answer's own text there
        assert answer.text[c.start : c.end] == c.source.quote


def test_a_refusal_part_is_the_answers_refusal():
    answer = responses.parse(_response(output=[_message({"type": "refusal", "refusal": "No."})]))
    assert (answer.text, answer.refusal) == (None, "No.")


@pytest.mark.parametrize(
    "error, body, learnt",
    [
        (
            ("unsupported_value", "invalid_request_error", "reasoning.effort",
             "Unsupported value: 'reasoning.effort' does not support 'none' with this model."),
            {"reasoning_effort": "none"},
            ("reasoning_effort", "Unsupported value: 'reasoning_effort' does not support 'none' with this model."),
        ),
        (("invalid_value", "", "max_output_tokens", "too large"), {"max_tokens": 10}, ("max_tokens", "too large")),
        (("", "", "text.format", "no schema"), {}, ("response_format", "no schema")),
        (("unsupported_parameter", "", "temperature", "Unsupported parameter: 'temperature'."), {},
         ("temperature", "Unsupported parameter: 'temperature'.")),
        (("unsupported_parameter", "invalid_request_error", None,
          "Unsupported parameter: 'max_tokens'. In the Responses API, this parameter has moved to "
          "'max_output_tokens'. Try again with the new parameter."), {"max_tokens": 10}, ("", "")),
    ],
    ids=["effort", "token-cap", "format", "temperature", "moved-is-not-learnt"],
)  # fmt: skip
def test_a_refusal_is_given_back_in_chat_names_for_shape_learning(error, body, learnt):
    _, _, param, message = responses.chat_names(error, body)
    assert (param, message) == learnt


@pytest.mark.parametrize(
    "base_url, wanted, web, api",
    [
        (None, None, False, "responses"),  # OpenAI's own endpoint
        ("https://api.openai.com/v1", "auto", False, "responses"),
        ("http://localhost:11434/v1", None, False, "chat"),  # Ollama, vLLM, a gateway: chat
        ("http://localhost:11434/v1", "responses", False, "responses"),
        ("https://api.openai.com/v1", "chat", False, "chat"),
        ("http://localhost:11434/v1", None, True, "responses"),  # web research needs the Responses API
    ],
)
def test_the_api_is_chosen_per_endpoint_and_by_the_setting(base_url, wanted, web, api):
    assert transports.choose(base_url, wanted, web_search=web) == api


def test_web_research_on_chat_completions_is_refused_in_words():
    with pytest.raises(ValueError, match="Web research needs the Responses API"):
        transports.choose(None, "chat", web_search=True)


@pytest.mark.parametrize(
    "cell, key",
    [
        ("https://www.Acme.com/about", "acme.com"),
        ("acme.com", "acme.com"),
        ("http://ACME.com:8080/", "acme.com"),
        ("jo.doe@acme.com", "acme.com"),
        ("www.acme.co.uk", "acme.co.uk"),
        ("ACME Holdings, Inc.", "acme holdings"),
        ("Acme Holdings", "acme holdings"),
        ("Müller GmbH", "müller"),
        ("Fernhill Analytics Ltd.", "fernhill analytics"),
        ("Co-op Bank", "co op bank"),  # a legal word only at the end is dropped
        ("", ""),
        ("   ", ""),
    ],
)
def test_a_company_key_makes_the_ways_people_write_one_company_alike(cell, key):
    assert company_key(cell) == key


def test_a_packed_answers_citations_go_to_the_rows_whose_entry_holds_them():
    text = '{"items": [{"id": "r1", "answer": "Acme sells [a.com](https://a.com)"}, {"id": "r2", "answer": "B"}]}'
    start = text.index("[a.com]")
    a = Source("https://a.com", "A", "[a.com](https://a.com)")
    cited = packing.cited_items(text, [Citation(start, start + 22, a)], [1, 2])
    assert cited == {1: (a,)}


@pytest.mark.parametrize(
    "yaml_extra, words",
    [
        ("tools: [code_interpreter]\n", "field 'tools' names 'code_interpreter'"),
        ("one_answer_per: Domain\n", "field 'one_answer_per' names 'Domain', not a placeholder"),
        (
            "tools: [web_search]\nmax_tool_calls: 0\n",
            "field 'max_tool_calls' must be a whole number from 1 to 20",
        ),
        (
            "tools: [web_search]\nsearch_context_size: huge\n",
            "field 'search_context_size' must be one of low",
        ),
        ("tools: [web_search]\nuser_location: {planet: Mars}\n", "field 'user_location' has 'planet'"),
    ],
)
def test_a_prompt_file_with_bad_research_fields_is_refused_naming_the_field(yaml_extra, words):
    with pytest.raises(PromptLibraryError, match=words):
        parse_spec("name: x\ntemplate: '{{ Company }}'\n" + yaml_extra, source="x.yaml")


def test_the_budget_reserves_a_rows_searches_and_their_content():
    price = pricing.price_for(MODEL)
    prices = RunPrices(price, pricing.tier_prices(MODEL))
    body = {
        "model": MODEL,
        "tools": [{"type": "web_search", "search_context_size": "high"}],
        "max_tool_calls": 3,
    }
    plain = prices.worst(1000, 200, "default")
    searching = prices.worst(1000, 200, "default", body)
    content = research.allowance(body)[1]
    assert content == 8000
    assert searching - plain == pytest.approx(3 * 0.01 + 3 * content * price.input / 1e6)


def test_the_quote_counts_one_request_per_company_and_its_searches_apart():
    df, options = people(30, companies=10), runs.RunOptions(model=MODEL)
    q = prompt_draft.quote_table(df, RESEARCH, options)
    assert (q.rows, q.distinct, q.reused_rows) == (30, 10, 20)
    assert (q.search_calls_low, q.search_calls_high) == (0, 30)  # 0 to max_tool_calls a company
    assert q.search_tokens_high == 30 * 4000 and q.search_cost_high == pytest.approx(0.30)
    lines = prompt_draft.quote_lines(q)
    assert lines["Web searches"] == "0 – 30 ($0 – $0.3000)"
    narrowed = prompt_draft.quote_table(df, RESEARCH, options, sample_search_calls=(1, 2, 2, 3, 1))
    assert (narrowed.search_calls_low, narrowed.search_calls_high) == (18, 30)  # mean 1.8, p90 3, a company
    off = prompt_draft.quote_table(
        df, RESEARCH, runs.RunOptions(model=MODEL, web_search=False, one_answer_per="")
    )
    assert (off.distinct, off.search_calls_high, off.web_search) == (30, 0, False)


# ----- the same run through either API ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["plain", "structured", "packed"])
def test_the_same_300_rows_get_the_same_answers_and_cost_through_chat_and_responses(sim, tmp_path, kind):
    df = people(300)
    spec = {"plain": PLAIN, "structured": STRUCTURED, "packed": STRUCTURED}[kind]
    per_request = 10 if kind == "packed" else None
    results = {}
    for api in ("chat", "responses"):
        sim.reset(SimConfig(today=SIM_TODAY))
        options = runs.RunOptions(model=MODEL, max_tokens=120, api=api, rows_per_request=per_request)
        plan = runs.plan_run(df, spec, options, base_url=sim.url)
        assert plan.meta["api"] == api
        job = start(sim, plan, tmp_path / api)  # each API its own store: nothing reused from the other
        assert job.wait(120)
        snap = job.snapshot()
        assert (snap.succeeded, snap.failed, snap.pending) == (300, 0, 0), snap.recent_errors
        ledger = sim.ledger()
        assert {e.get("api", "chat") for e in ledger} == {api}
        # The cost shown is what the server billed, and the tokens are the ledger's, to the token.
        assert snap.cost_usd == pytest.approx(bill(ledger), rel=1e-9)
        assert snap.prompt_tokens == sum(e["prompt_tokens"] for e in ledger)
        assert snap.completion_tokens == sum(e["completion_tokens"] for e in ledger)
        results[api] = {r.row_id: r for r in job.rows()}
    chat, resp = results["chat"], results["responses"]
    assert {i: r.text for i, r in chat.items()} == {i: r.text for i, r in resp.items()}
    assert {i: r.usage for i, r in chat.items()} == {i: r.usage for i, r in resp.items()}
    assert {i: r.flags for i, r in chat.items()} == {i: r.flags for i, r in resp.items()}
    if kind == "packed":
        assert all("packed" in r.flags for r in resp.values())


def test_flex_through_the_responses_api_is_priced_by_the_tier_that_served_it(sim, data_dir):
    spec = PromptSpec(
        name="r", template="Company: {{ Company }}\nWebsite: {{ Website }}", tools=("web_search",)
    )
    plan = runs.plan_run(people(30), spec, runs.RunOptions(model=MODEL, max_tokens=120), base_url=sim.url)
    settings = engine.RunSettings(workers=8, timeout_s=10, service_tier="flex", transport="responses")
    job = start(sim, plan, data_dir, settings=settings)
    assert job.wait(60)
    snap, ledger = job.snapshot(), sim.ledger()
    assert snap.succeeded == 30 and dict(snap.tier_rows) == {"flex": 30}
    assert {e["service_tier"] for e in ledger} == {"flex"}
    assert snap.cost_usd == pytest.approx(bill(ledger), rel=1e-9)  # tokens at flex rates, calls at theirs


def test_an_answer_bought_through_one_api_is_reused_through_the_other(sim, data_dir):
    df = people(40)
    first = runs.plan_run(
        df, PLAIN, runs.RunOptions(model=MODEL, max_tokens=80, api="chat"), base_url=sim.url
    )
    job = start(sim, first, data_dir)
    assert job.wait(60) and len(sim.ledger()) == 40
    again = runs.plan_run(
        df, PLAIN, runs.RunOptions(model=MODEL, max_tokens=80, api="responses"), base_url=sim.url
    )
    assert [i.request_hash for i in again.items] == [i.request_hash for i in first.items]  # one key, any API
    job2 = start(sim, again, data_dir)
    assert job2.wait(60)
    snap = job2.snapshot()
    assert (snap.succeeded, snap.requests_sent, snap.cache_hits, snap.cost_usd) == (40, 0, 40, 0.0)
    before = {r.row_id: r for r in job.rows()}
    for row in job2.rows():  # the same answer, its tokens and cost as first paid (reused, so 0 in totals)
        assert (row.text, row.usage, row.from_cache) == (
            before[row.row_id].text,
            before[row.row_id].usage,
            True,
        )


ACME = {
    "acme-reasoner-2": {"reasoning": True, "efforts": ["low", "medium", "high"], "default_effort": "medium"}
}


def test_a_model_the_catalog_does_not_know_is_learnt_through_the_responses_api(sim, data_dir):
    sim.configure(extra_models=ACME)
    spec = PromptSpec(name="t", template="One line for {{ First Name }} at {{ Company }}.")
    options = runs.RunOptions(model="acme-reasoner-2", max_tokens=600, temperature=0.7, api="responses")
    job = start(sim, runs.plan_run(people(120), spec, options, base_url=sim.url), data_dir)
    assert job.wait(120)
    snap = job.snapshot()
    assert (snap.succeeded, snap.failed, snap.pending) == (120, 0, 0), snap.recent_errors
    assert snap.adjustments == (
        "acme-reasoner-2 does not take a temperature: sent without it.",
        "acme-reasoner-2 reasons (it answered at effort 'medium'): sent with a reasoning effort.",
        "acme-reasoner-2 does not take reasoning effort 'none': sent with 'low' (it takes low, medium, high).",
    )
    efforts = Counter(e["reasoning_effort"] for e in sim.ledger())
    assert efforts == {"medium": 1, "low": 119}  # only the answer that taught it ran at the model's default
    assert sim.stats()["by_status"]["400"] == 2  # one refusal per refused parameter, not one per row


# ----- web research -------------------------------------------------------------------------------------------


def expected_sources(plan: engine.RunPlan) -> dict[str, tuple[str, ...]]:
    """Company key -> the addresses the simulator cites for the request its rows share."""
    out = {}
    for item in plan.items:
        key = company_key(plan.inputs[item.row_id]["Website"])
        fmt = item.body.get("response_format")
        ((_, found),) = websearch.request_plans(item.body["messages"], fmt, item.body["max_tool_calls"])
        out[key] = tuple(dict.fromkeys(responses.clean_url(s.url) for s in found.sources))
    return out


def test_200_leads_at_50_companies_send_50_requests_with_sources_and_cost_the_servers_bill(sim, data_dir):
    df = people(200, companies=50)
    plan = runs.plan_run(df, RESEARCH, runs.RunOptions(model=MODEL), base_url=sim.url)
    assert plan.meta["api"] == "responses" and plan.meta["one_answer_per"] == "Website"
    assert len({i.request_hash for i in plan.items}) == 50
    job = start(sim, plan, data_dir)
    assert job.wait(120)
    snap = job.snapshot()
    ledger = sim.ledger()
    assert (snap.succeeded, snap.failed, len(ledger), snap.requests_sent) == (200, 0, 50, 50)
    assert snap.web_search_calls == sum(e["web_search_calls"] for e in ledger) > 50
    assert snap.cost_usd == pytest.approx(bill(ledger), rel=1e-9)  # tokens and calls, as billed
    frame = runs.results_frame(plan.inputs, job.rows(), plan.meta)
    want = expected_sources(plan)
    for row_id, row in frame.iterrows():
        key = company_key(row["Website"])
        assert row["sources"] == "\n".join(want[key])  # one address a line, the company's own
        assert row["answer_shared"] == f"shared with 4 rows ({key})"
        flagged = "quality:no_source" in row["enrich_flags"].split(",")
        assert flagged == (not want[key]), row_id
    # Cost counted once: the rows that reused their company's answer carry 0, the column sums to the bill.
    assert frame["enrich_cost_usd"].sum() == pytest.approx(bill(ledger), rel=1e-9)
    assert frame["web_search_calls"].sum() == snap.web_search_calls
    assert (frame["enrich_flags"].str.contains("reused")).sum() == 150
    # The export keeps the sources: a CSV cell with a line break per address, read back exactly.
    back = list(csv.DictReader(io.StringIO(export.export_bytes(frame, "csv").decode("utf-8-sig"))))
    assert [r["sources"] for r in back] == list(frame["sources"])
    assert any("\n" in r["sources"] for r in back)


def test_packed_rows_with_web_research_each_get_their_own_sources(sim, data_dir):
    spec = PromptSpec(
        name="p", template="Company: {{ Company }}\nWebsite: {{ Website }}", tools=("web_search",)
    )
    options = runs.RunOptions(model=MODEL, max_tokens=200, rows_per_request=5)
    plan = runs.plan_run(people(20), spec, options, base_url=sim.url)
    assert plan.packs and all(p.body["max_tool_calls"] == 15 for p in plan.packs)  # 3 a row
    job = start(sim, plan, data_dir)
    assert job.wait(60)
    ledger = sim.ledger()
    assert job.snapshot().cost_usd == pytest.approx(bill(ledger), rel=1e-9)
    for row in job.rows():
        if "packed" in row.flags:
            site = str(plan.inputs[row.row_id]["Website"]).lower()
            assert all(company_key(s.url) in (company_key(site), websearch.NEWS_HOST) for s in row.sources)


@pytest.mark.parametrize("share", [0.05, 0.3, 0.7])
def test_a_budget_between_the_best_and_the_worst_case_is_never_crossed(sim, data_dir, share):
    spec = PromptSpec(
        name="r", template="Company: {{ Company }}\nWebsite: {{ Website }}", tools=("web_search",)
    )
    plan = runs.plan_run(people(60), spec, runs.RunOptions(model=MODEL, max_tokens=150), base_url=sim.url)
    q = quote.quote([i.body for i in plan.items], MODEL, max_tokens=150)
    assert (q.search_calls_low, q.search_calls_high) == (0, 180)
    budget = q.cost_low + share * (q.cost_high - q.cost_low)
    settings = engine.RunSettings(workers=12, timeout_s=10, budget_usd=budget, transport="responses")
    job = start(sim, plan, data_dir, settings=settings)
    seen = []
    while not job.wait(0.02):
        seen.append(job.snapshot().cost_usd)
    snap = job.snapshot()
    billed = bill(sim.ledger())
    assert billed <= budget + 1e-12 and max(seen, default=0) <= budget + 1e-12
    assert snap.cost_usd == pytest.approx(billed, rel=1e-9)
    if snap.status == "paused":
        assert "Budget reached" in snap.message and snap.pending > 0
    if share == 0.05:
        assert snap.status == "paused"


def test_web_research_through_the_batch_api_costs_what_the_batch_billed(sim, data_dir):
    sim.configure(batch_validating_s=0.01, batch_in_progress_s=0.05, batch_finalizing_s=0.01)
    df = people(30, companies=10)
    plan = runs.plan_run(df, RESEARCH, runs.RunOptions(model=MODEL), base_url=sim.url)
    job = batch.BatchJob(
        plan,
        endpoint=engine.Endpoint(api_key="sk-test-batch", base_url=sim.url),
        store=Store(data_dir),
        settings=batch.BatchSettings(poll_interval_s=0.05),
    ).start()
    assert job.wait(60)
    snap = job.snapshot()
    ledger = sim.ledger()
    assert (snap.succeeded, len(ledger)) == (30, 10) and all(
        e["api"] == "responses" and e["batch"] for e in ledger
    )
    assert snap.cost_usd == pytest.approx(bill(ledger), rel=1e-9)  # tokens at half price, calls at theirs
    frame = runs.results_frame(plan.inputs, job.rows(), plan.meta)
    want = expected_sources(plan)
    assert [r["sources"] for _, r in frame.iterrows()] == [
        "\n".join(want[company_key(w)]) for w in df["Website"]
    ]


def test_a_model_without_the_web_search_tool_stops_the_run_with_one_message(sim, data_dir):
    spec = PromptSpec(name="r", template="{{ Company }}", tools=("web_search",))
    plan = runs.plan_run(
        people(30), spec, runs.RunOptions(model="gpt-5-nano", max_tokens=100), base_url=sim.url
    )
    job = start(sim, plan, data_dir)
    assert job.wait(30)
    snap = job.snapshot()
    assert snap.status == "failed" and "gpt-5-nano cannot search the web here" in snap.message
    assert snap.succeeded == 0 and sim.stats()["by_status"]["400"] <= 16  # the first answers, not every row


def test_an_endpoint_without_the_responses_api_says_so_and_stops(data_dir):
    """A server that serves only Chat Completions answers 404 to /v1/responses: one message, rows pending."""

    class ChatOnly(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = b'{"error": {"message": "Not Found", "type": "invalid_request_error", "code": null}}'
            self.send_response(404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), ChatOnly)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        spec = PromptSpec(name="r", template="{{ Company }}", tools=("web_search",))
        plan = runs.plan_run(people(20), spec, runs.RunOptions(model=MODEL, max_tokens=60), base_url=url)
        job = engine.Job(
            plan,
            endpoint=engine.Endpoint(api_key="sk-test-chat-only", base_url=url),
            settings=engine.RunSettings(workers=4, timeout_s=5, transport=plan.meta["api"]),
            store=Store(data_dir),
            governor=Governor(),
        ).start()
        assert job.wait(30)
    finally:
        server.shutdown()
    snap = job.snapshot()
    assert snap.status == "failed" and snap.pending == 20
    assert "may not serve the Responses API" in snap.message and "--api chat" in snap.message


# ----- the command line: both APIs survive a kill -9; web research and the API are flags -------------------


def lead_file(path: Path, df: pd.DataFrame) -> Path:
    df.to_csv(path, index=False)
    return path


def cli(*args: str, url: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env.update(OPENAI_API_KEY="sk-test-cli", OPENAI_BASE_URL=url, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "lib", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.faults
@pytest.mark.parametrize("api", ["chat", "responses"])
def test_kill_9_mid_run_then_rerun_on_either_api_loses_nothing(tmp_path, api):
    leads = lead_file(tmp_path / "leads.csv", people(300))
    workers = 12
    config = SimConfig(today=SIM_TODAY, latency_ms=60, latency_dist="lognormal", latency_p99_ms=300, seed=24)
    with SimProcess(config) as server:
        out = tmp_path / "out.csv"
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
        env.update(OPENAI_API_KEY="sk-test-kill", OPENAI_BASE_URL=server.url, PYTHONPATH=str(ROOT))
        args = [sys.executable, "-m", "lib", "run", str(leads), "--output", str(out), "--template",
                "One line for {{ First Name }} at {{ Company }}.", "--max-tokens", "60", "--api", api,
                "--workers", str(workers), "--quiet"]  # fmt: skip
        for kill_after in (40, 150):
            proc = subprocess.Popen(
                args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            assert wait_until(lambda n=kill_after: len(server.ledger()) >= n, 60)
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        final = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        assert final.returncode == 0, final.stderr
        result = json.loads(final.stdout.strip().splitlines()[-1])
        ledger = server.ledger()
    assert (result["succeeded"], result["api"]) == (300, api)
    assert {e.get("api", "chat") for e in ledger} == {api}
    billed = Counter(int(e["row_id"]) for e in ledger)
    assert set(billed) == set(range(1, 301))  # no row lost
    assert sum(billed.values()) - 300 <= 2 * workers  # at most what was in flight, per crash
    rows = list(csv.DictReader(out.open(encoding="utf-8-sig")))
    assert [int(r["enrich_row_id"]) for r in rows] == list(range(1, 301))


def test_the_command_line_runs_web_research_and_says_what_it_cost(sim, tmp_path):
    leads = lead_file(tmp_path / "leads.csv", people(24, companies=8))
    out = tmp_path / "out.xlsx"
    check = cli("check", str(leads), "--prompt", "company-research", url=sim.url, cwd=tmp_path)
    assert check.returncode == 0, check.stderr
    quoted = json.loads(check.stdout.strip().splitlines()[-1])
    assert quoted["api"] == "responses" and quoted["one_answer_per"] == "Website"
    assert (
        quoted["distinct_requests"],
        quoted["web_search"]["calls_low"],
        quoted["web_search"]["calls_high"],
    ) == (8, 0, 24)
    done = cli(
        "run", str(leads), "--output", str(out), "--prompt", "company-research", url=sim.url, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    ledger = sim.ledger()
    assert (result["succeeded"], result["requests_sent"], len(ledger)) == (24, 8, 8)
    assert result["web_search_calls"] == sum(e["web_search_calls"] for e in ledger)
    assert result["cost_usd"] == pytest.approx(bill(ledger), rel=1e-6)
    frame = pd.read_excel(out, dtype=str).fillna("")
    assert {"sources", "web_search_calls", "answer_shared"} <= set(frame.columns)
    assert frame["sources"].str.startswith("https://").sum() > 0


@pytest.mark.parametrize(
    "args, words",
    [
        (["--web-search", "--api", "chat"], "--web-search needs the Responses API"),
        (["--no-web-search", "--max-tool-calls", "2"], "apply to web research"),
        (
            ["--one-answer-per", "Domain"],
            "One answer per 'Domain' was asked for, and the table has no column",
        ),
    ],
)
def test_research_flags_that_cannot_work_are_bad_input(sim, tmp_path, args, words):
    leads = lead_file(tmp_path / "leads.csv", people(5))
    done = cli("run", str(leads), "--output", str(tmp_path / "o.csv"), "--template", "{{ Company }}", *args,
               url=sim.url, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2 and words in done.stderr, done.stderr
    assert sim.ledger() == []


# ----- the homepage reader: one reading per site ---------------------------------------------------------------


@pytest.fixture
def gated_site():
    gate = threading.Event()

    def homepage(handler):
        gate.wait(5)  # held until both readers have started
        return W.html(W.HOMEPAGE)

    site = W.Site("gated", {"/": homepage, "/robots.txt": W.Reply(404, b"")}).start()
    yield site, gate
    gate.set()
    site.stop()


FAST = FetchSettings(timeout_s=6, connect_timeout_s=1.0, site_delay_s=0.01)


def test_two_jobs_reading_one_site_at_the_same_moment_fetch_it_once(gated_site):
    site, gate = gated_site
    settings = WebSettings(workers=4, fetch=FAST, allow_hosts=("127.0.0.1",), use_cache=False)
    first = WebJob({1: site.url}, settings=settings, on_connect=W.loopback_only, job_id="web-a").start()
    assert W.wait_for(lambda: site.paths().count("/") == 1)
    second = WebJob(
        {1: f"{site.address}/"}, settings=settings, on_connect=W.loopback_only, job_id="web-b"
    ).start()
    assert W.wait_for(lambda: second.snapshot().in_flight == 1)
    gate.set()
    assert first.wait(10) and second.wait(10)
    assert site.paths().count("/") == 1  # the second reader waited for the first one's reading
    assert first.rows()[0].text == second.rows()[0].text and "Fernhill" in first.rows()[0].text


def test_rows_writing_one_site_differently_share_one_reading(gated_site):
    site, gate = gated_site
    gate.set()
    settings = WebSettings(workers=4, fetch=FAST, allow_hosts=("127.0.0.1",), use_cache=False)
    cells = {1: site.url, 2: site.address, 3: f"http://{site.address}", 4: f"{site.url}?"}
    job = WebJob(cells, settings=settings, on_connect=W.loopback_only).start()
    assert job.wait(10)
    assert site.paths().count("/") == 1 and job.snapshot().sites == 1
    assert {r.status for r in job.rows()} == {"succeeded"}
