"""The workspace: any set-up survives save, a new process and load unchanged; settings follow the prompt
only until the user sets them; uploads are kept once per content."""

from __future__ import annotations

import contextlib
import hashlib
import subprocess
import sys
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lib.prompts.draft import Draft
from lib.prompts.library import PromptLibrary
from lib.store import Store, StoreError
from lib.workspace import Connection, LeadSource, Settings, Websites, Workspace, Workspaces

text = st.text(max_size=40)
maybe_int = st.none() | st.integers(min_value=1, max_value=100_000)
maybe_float = st.none() | st.floats(min_value=0, max_value=2, allow_nan=False)

drafts = st.builds(
    Draft,
    name=text,
    description=text,
    system=text,
    examples=st.lists(st.tuples(text, text), max_size=3),
    template=text,
    outputs=text,
    json_schema=st.none() | st.just({"type": "object", "properties": {"industry": {"type": "string"}}}),
    model=st.none() | st.sampled_from(["gpt-4o-mini", "gpt-5-mini", "my-local-llama"]),
    temperature=maybe_float,
    max_tokens=maybe_int,
    field_cap=st.integers(min_value=1, max_value=10_000),
    version=st.integers(min_value=1, max_value=50),
)
leads = st.builds(
    LeadSource,
    file_name=text,
    digest=st.text("0123456789abcdef", min_size=64, max_size=64),
    size=st.integers(min_value=0, max_value=10**9),
    sheet=st.none() | text,
    encoding=st.none() | st.sampled_from(["utf-8", "cp1252", "mac_roman"]),
    ragged=st.sampled_from(["reject", "skip"]),
)
all_settings = st.builds(
    Settings,
    model=st.sampled_from(["gpt-4o-mini", "gpt-4.1-mini", "x"]),
    model_set=st.booleans(),
    max_tokens=maybe_int,
    max_tokens_set=st.booleans(),
    temperature=maybe_float,
    temperature_set=st.booleans(),
    workers=st.integers(min_value=1, max_value=500),
    rpm=maybe_int,
    tpm=maybe_int,
    budget_usd=st.none() | st.floats(min_value=0, max_value=1e6, allow_nan=False),
    empty=st.sampled_from(["send", "skip"]),
    batch=st.booleans(),
    id_columns=st.none() | st.lists(text, max_size=3),
    sample_n=st.integers(min_value=1, max_value=50),
    sample_how=st.sampled_from(["first", "random"]),
)
workspaces = st.builds(
    Workspace,
    id=st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", min_size=16, max_size=16),
    lead=st.none() | leads,
    prompt_source=st.none() | text,
    draft=st.none() | drafts,
    settings=all_settings,
    connection=st.builds(Connection, demo=st.none() | st.booleans(), base_url=text),
    sample_run_id=st.none() | text,
    run_id=st.none() | text,
    websites=st.builds(
        Websites,
        url_column=st.none() | text,
        about_page=st.booleans(),
        allow_hosts=text,
        job_id=st.none() | text,
    ),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ws=workspaces)
def test_any_workspace_survives_save_and_load_unchanged(tmp_path_factory, ws):
    store = Store(tmp_path_factory.mktemp("ws"))
    try:
        spaces = Workspaces(store)
        spaces.save(ws)
        loaded = spaces.load(ws.id)
    finally:
        store.close()
    assert loaded == ws


def test_a_workspace_survives_a_new_process(data_dir):
    """What one server process saved, another (after a restart) loads exactly."""
    store = Store(data_dir)
    spaces = Workspaces(store)
    ws = spaces.create()
    ws.set_lead(LeadSource("leads.csv", "a" * 64, 123, ragged="skip"))
    ws.choose_prompt("Icebreaker", Draft(name="Icebreaker", template="Hi {{ First Name }}", max_tokens=80))
    ws.set_setting("workers", 7)
    ws.set_setting("budget_usd", 2.5)
    spaces.save(ws)
    store.close()
    code = (
        "import sys; from lib.store import Store; from lib.workspace import Workspaces; "
        f"w = Workspaces(Store({str(data_dir)!r})).load({ws.id!r}); sys.stdout.write(w.to_json())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert Workspace.from_json(out) == ws


@pytest.mark.parametrize(
    ("user_sets", "draft_max", "expect_value", "expect_origin"),
    [
        ({}, 80, 80, "from the prompt 'Icebreaker'"),
        ({}, None, None, "from the prompt 'Icebreaker'"),
        ({"max_tokens": 200}, 80, 200, "set by you"),
        ({"max_tokens": None}, 80, None, "set by you"),  # cleared on purpose: no limit, not the prompt's
    ],
)
def test_run_settings_follow_the_prompt_until_the_user_sets_them(
    user_sets, draft_max, expect_value, expect_origin
):
    ws = Workspace(id="x" * 16)
    ws.choose_prompt("Icebreaker", Draft(name="Icebreaker", max_tokens=draft_max, temperature=0.7))
    for name, value in user_sets.items():
        ws.set_setting(name, value)
    assert ws.effective_max_tokens() == expect_value
    assert ws.origin("max_tokens") == expect_origin
    ws.choose_prompt("Other", Draft(name="Other", max_tokens=33))  # opening another prompt
    assert ws.effective_max_tokens() == (33 if not user_sets else expect_value)


def test_choosing_a_prompt_offers_its_model_unless_the_user_chose_one():
    ws = Workspace(id="x" * 16)
    ws.choose_prompt("A", Draft(name="A", model="gpt-4.1-mini"))
    assert ws.effective_model() == "gpt-4.1-mini"
    ws.set_setting("model", "gpt-4o")
    ws.choose_prompt("B", Draft(name="B", model="gpt-5-mini"))
    assert ws.effective_model() == "gpt-4o"


def test_unknown_or_malformed_ids_load_nothing(data_dir):
    store = Store(data_dir)
    try:
        spaces = Workspaces(store)
        assert spaces.load("no-such-workspace-id") is None
        for bad in ("", "../../etc", "a b", "x" * 200, "' OR 1=1 --"):
            assert spaces.load(bad) is None
    finally:
        store.close()


def test_uploads_are_kept_once_and_deleted_with_their_last_workspace(data_dir):
    store = Store(data_dir)
    try:
        spaces = Workspaces(store)
        digest = spaces.put_file(b"First Name\r\nAnn\r\n")
        assert spaces.put_file(b"First Name\r\nAnn\r\n") == digest
        assert len(list(spaces.uploads.iterdir())) == 1
        one, two = spaces.create(), spaces.create()
        for ws in (one, two):
            ws.set_lead(LeadSource("a.csv", digest, 17))
            spaces.save(ws)
        spaces.delete(one.id)
        assert spaces.file_bytes(digest) == b"First Name\r\nAnn\r\n", "still used by the other workspace"
        spaces.delete(two.id)
        assert spaces.file_bytes(digest) is None
        assert spaces.load(two.id) is None
        assert spaces.file_bytes("../studio.sqlite3") is None
    finally:
        store.close()


@contextlib.contextmanager
def _full_uploads(spaces: Workspaces, data: bytes) -> Iterator[None]:
    """The uploads folder on a real 64 KiB filesystem: the copy cannot be written whole."""
    from tests.test_guarantees import small_disk

    with small_disk(spaces.uploads, "64k"):
        yield


@contextlib.contextmanager
def _name_taken(spaces: Workspaces, data: bytes) -> Iterator[None]:
    """The file's final name is taken by a folder: the copy is written, but cannot be put in place."""
    blocked = spaces.uploads / hashlib.sha256(data).hexdigest()
    blocked.mkdir(parents=True)
    (blocked / "x").write_text("x")
    yield


@pytest.mark.parametrize("failing", [_full_uploads, _name_taken], ids=["disk-full", "name-taken"])
def test_a_failed_upload_write_leaves_no_temporary_file(data_dir, failing):
    data = b"First Name\r\n" + b"Ann\r\n" * 40_000  # 240 KB
    store = Store(data_dir)
    spaces = Workspaces(store)
    try:
        with failing(spaces, data):
            with pytest.raises(StoreError, match="The uploaded file could not be kept in"):
                spaces.put_file(data)
            assert [p.name for p in spaces.uploads.iterdir() if p.name.startswith(".upload-")] == []
    finally:
        store.close()


def test_recent_lists_the_newest_first(data_dir):
    store = Store(data_dir)
    try:
        spaces = Workspaces(store)
        first, second = spaces.create(), spaces.create()
        spaces.save(first)  # changed last
        assert [w.id for w in spaces.recent()][:2] == [first.id, second.id]
    finally:
        store.close()


def test_the_key_is_never_part_of_a_workspace():
    fields = set(Workspace.__dataclass_fields__) | set(Connection.__dataclass_fields__)
    assert not {f for f in fields if "key" in f.lower()}


@pytest.mark.parametrize("name", [s.name for s in PromptLibrary().list()])
def test_a_library_prompt_survives_the_workspace_whole(name):
    """Opened, kept in a workspace, reloaded: the same prompt, so saving a version loses nothing (tags,
    optional fields, the schema's property order, which is the output columns' order)."""
    spec = PromptLibrary().load(name)
    ws = Workspace(id="w")
    ws.choose_prompt(name, Draft.of(spec))
    back = Workspace.from_json(ws.to_json()).draft
    assert back.spec() == spec
    assert back.spec().output_columns == spec.output_columns and back.optional_fields == spec.optional_fields


# --- what the pages ask of a workspace (pages/_state.bind reads and writes by path) ---------------------


@pytest.mark.parametrize(
    ("path", "value", "check"),
    [
        ("settings.workers", 4, lambda w: w.settings.workers == 4),
        ("settings.model", "gpt-4.1-mini", lambda w: w.settings.model_set and w.effective_model() == "gpt-4.1-mini"),
        ("settings.temperature", 0.2, lambda w: w.settings.temperature_set and w.effective_temperature() == 0.2),
        ("draft.template", "Hi {{ Name }}", lambda w: w.draft is not None and w.draft.template == "Hi {{ Name }}"),
        ("connection.base_url", "http://x/v1", lambda w: w.connection.base_url == "http://x/v1"),
        ("websites.url_column", "Website", lambda w: w.websites.url_column == "Website"),
        ("history_run_id", "r1", lambda w: w.history_run_id == "r1"),
    ],
)  # fmt: skip
def test_a_field_is_read_and_written_by_its_path(path, value, check):
    w = Workspace(id="w")
    w.set_path(path, value)
    assert check(w)
    assert w.get_path(path) == value


def test_a_path_through_a_missing_part_reads_none_and_an_unknown_setting_is_refused():
    w = Workspace(id="w")
    assert w.get_path("draft.template") is None and w.get_path("lead.file_name") is None
    with pytest.raises(KeyError):
        w.set_path("settings.no_such_setting", 1)


@pytest.mark.parametrize(
    ("model", "settings", "price"),
    [
        ("gpt-4o-mini", {"price_input": 9.0, "price_output": 9.0}, None),  # a known model keeps its price
        ("my-proxy-model", {}, None),  # unknown and nothing given: unpriced
        ("my-proxy-model", {"price_input": 1.0, "price_output": 4.0}, (1.0, 1.0, 4.0)),
        ("my-proxy-model", {"price_output": 4.0}, (0.0, 0.0, 4.0)),
        ("my-proxy-model", {"price_aliases": {"my-proxy-model": "gpt-4o-mini"}}, "as gpt-4o-mini"),
    ],
)
def test_a_model_the_price_table_does_not_know_is_priced_as_the_user_said(model, settings, price):
    from lib.cost.pricing import price_for

    w = Workspace(id="w", settings=Settings(**settings))
    got = w.custom_price(model)
    if price == "as gpt-4o-mini":
        known = price_for("gpt-4o-mini")
        assert got is not None and (got.input, got.output) == (known.input, known.output)
    else:
        assert (None if got is None else (got.input, got.cached_input, got.output)) == price


def test_run_settings_come_from_the_workspace_and_a_sample_sets_its_own_workers():
    w = Workspace(id="w", settings=Settings(workers=32, rpm=500, budget_usd=2.5, service_tier="flex"))
    full, sample = w.run_settings(), w.run_settings(workers=5)
    assert (full.workers, full.rpm, full.budget_usd, full.service_tier) == (32, 500, 2.5, "flex")
    assert sample.workers == 5 and sample.rpm == 500
