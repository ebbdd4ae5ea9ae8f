"""The shipped prompts and the prompt library's files: load, check, render, save without clobbering."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from lib import models
from lib.prompts import library
from lib.prompts.library import PromptLibrary, PromptLibraryError, dump_spec, parse_spec
from lib.prompts.templates import (
    DATA_NOTICE,
    Example,
    PromptSpec,
    build_request,
    check,
    empty_fields,
    is_structured,
    parse_output,
    render_messages,
)

SHIPPED = Path(__file__).resolve().parent.parent / "prompts"
APOLLO = [
    "First Name",
    "Last Name",
    "Title",
    "Company",
    "Company Name for Emails",
    "Email",
    "Person Linkedin Url",
    "Website",
    "Industry",
    "# Employees",
    "City",
    "State",
    "Country",
]
ROW = {
    "First Name": "Dana",
    "Last Name": "Okafor",
    "Title": "Director of Revenue Operations",
    "Company": "Fernhill Analytics, Inc.",
    "Company Name for Emails": "Fernhill Analytics",
    "Email": "dana.okafor@fernhill.io",
    "Person Linkedin Url": "http://www.linkedin.com/in/danaokafor",
    "Website": "http://www.fernhill.io",
    "Industry": "computer software",
    "# Employees": "85",
    "City": "Leeds",
    "State": "England",
    "Country": "United Kingdom",
    "Website Content": "Fernhill turns messy CRM data into forecasts your board trusts. " * 400,
    "website_text": "Fernhill turns messy CRM data into forecasts your board trusts. " * 400,
}
EXPECTED = {
    "icebreaker": ("Icebreaker", False),
    "company-name-normalisation": ("Company name normalisation", False),
    "summary": ("Summary", False),
    "website-analysis": ("Website analysis", True),
    "industry-classification": ("Industry classification", True),
    "column-transformation": ("Column transformation", False),
    "company-research": ("Company research", True),
}


@pytest.fixture
def lib(tmp_path: Path) -> PromptLibrary:
    directory = tmp_path / "prompts"
    shutil.copytree(SHIPPED, directory)
    return PromptLibrary(directory)


def test_every_shipped_prompt_is_listed_and_loads():
    shipped = PromptLibrary()
    assert shipped.errors() == []
    assert sorted(shipped.names()) == sorted(name for name, _ in EXPECTED.values())


@pytest.mark.parametrize("stem", sorted(EXPECTED))
def test_shipped_prompt_checks_and_renders(stem):
    spec = PromptLibrary().load(stem)
    name, structured = EXPECTED[stem]
    assert spec.name == name and is_structured(spec) is structured
    # a current cheap model at the effort enrichment needs (no hidden thinking), and no temperature it refuses
    assert models.retirement(spec.model).state == "current" and models.model_info(spec.model).known
    assert spec.reasoning_effort == "none" and models.effort_for(spec.model, spec.reasoning_effort) == "none"
    assert spec.temperature is None or models.model_info(spec.model).supports_temperature
    assert spec.max_tokens and spec.max_tokens <= 500
    assert spec.description.strip()
    columns = APOLLO + ["Website Content", "website_text"]
    assert check(spec, columns) == []
    if "Website Content" not in spec.template and "website_text" not in spec.template:
        assert check(spec, APOLLO) == []
    assert empty_fields(spec, ROW) == []
    messages = render_messages(spec, ROW)
    assert messages[0]["role"] == "system" and messages[0]["content"].endswith(DATA_NOTICE)
    assert [m["role"] for m in messages[1:]] == ["user", "assistant"] * len(spec.examples) + ["user"]
    user = messages[-1]["content"]
    assert "{{" not in user and "<data>" in user
    assert len(user) < spec.field_cap + 2_000  # the long website text was capped
    # few-shot turns look like real turns: same fencing, answers that fit the output
    for example in spec.examples:
        assert "<data>" in example.user
        assert parse_output(spec, example.assistant).error is None
    body = build_request(
        spec, ROW, model=spec.model, max_tokens=spec.max_tokens, temperature=spec.temperature
    )
    assert ("response_format" in body) is structured


@pytest.mark.parametrize("path", sorted(SHIPPED.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_files_are_in_canonical_form(path):
    """Saving a shipped prompt unchanged changes no byte, so diffs show only real edits."""
    text = path.read_text(encoding="utf-8")
    assert dump_spec(parse_spec(text, source=path.name)) == text
    assert path.stem == library.slug(parse_spec(text).name)


def test_icebreaker_marks_what_it_says_may_be_empty_optional():
    spec = PromptLibrary().load("Icebreaker")
    assert spec.optional_fields == ("Industry", "City", "# Employees")
    columns = ["First Name", "Title", "Company"]  # what a bare export has
    assert [p.placeholder for p in check(spec, columns)] == []
    user = render_messages(spec, {"First Name": "Jane", "Title": "CFO", "Company": "Acme"})[-1]["content"]
    assert "Industry: <data></data>\nCity: <data></data>\nEmployees: <data></data>" in user


def test_icebreaker_examples_follow_its_own_rules():
    spec = PromptLibrary().load("Icebreaker")
    assert 2 <= len(spec.examples) <= 3
    for example in spec.examples:
        line = example.assistant
        assert len(line.split()) <= 25 and "!" not in line and not line.lower().startswith(("hi", "hey"))


def test_company_name_examples():
    spec = PromptLibrary().load("company-name-normalisation")
    assert spec.reasoning_effort == "none"
    pairs = {e.user: e.assistant for e in spec.examples}
    assert pairs["Company name: <data>ACME Holdings, Inc.</data>"] == "Acme"
    assert "HubSpot" in pairs.values()


def test_industry_labels_are_an_enum_with_other():
    spec = PromptLibrary().load("industry-classification")
    labels = spec.json_schema["properties"]["industry"]["enum"]
    assert 15 <= len(labels) <= 30 and labels[-1] == "Other" and len(set(labels)) == len(labels)
    assert spec.output_columns == ("industry", "confidence")


SPEC = PromptSpec(
    name="Pain points",
    description="Two likely pain points.\nFor discovery calls.",
    system="You are terse.\n\nVery terse.",
    examples=(Example("Title: <data>CFO</data>", "Cash flow; audit prep"),),
    template="Title: {{ Title }}\nCompany: {{ Company }}\n",
    model="gpt-4.1-mini",
    temperature=0.3,
    max_tokens=60,
    tags=("discovery",),
    field_cap=500,
)


@pytest.mark.parametrize(
    "spec",
    [
        SPEC,
        PromptSpec(name="Bare", template="{{ X }}"),
        replace(SPEC, system="  leading spaces\ntrailing spaces   \n\n", template="no newline at end"),
        replace(SPEC, output_columns=("a", "b"), examples=(Example("x", '{"a": "1", "b": "2"}'),)),
        PromptSpec(
            name="Schema",
            template="{{ X }}",
            json_schema={
                "type": "object",
                "properties": {"k": {"type": "string", "enum": ["yes", "no", "null", "1.5"]}},
                "required": ["k"],
                "additionalProperties": False,
            },
        ),
        replace(SPEC, name="Ünïcødé — café", template="Café: {{ Société }} “quoted” 'single' #hash: colon"),
        replace(SPEC, template="{{ Title }} {{ # Employees }}", optional_fields=("# Employees",)),
    ],
    ids=["full", "bare", "whitespace", "columns", "schema", "unicode", "optional"],
)
def test_dump_parse_round_trip_is_identity(spec):
    text = dump_spec(spec)
    assert parse_spec(text) == spec
    assert dump_spec(parse_spec(text)) == text


def test_dump_uses_block_scalars_and_field_order():
    text = dump_spec(SPEC)
    assert "system: |-\n  You are terse.\n\n  Very terse.\n" in text
    assert "template: |\n  Title: {{ Title }}\n" in text
    keys = [line.split(":")[0] for line in text.splitlines() if line and not line.startswith((" ", "-"))]
    assert keys == [
        "name",
        "description",
        "version",
        "model",
        "temperature",
        "max_tokens",
        "field_cap",
        "output_columns",
        "system",
        "examples",
        "template",
        "tags",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: [unclosed", "bad.yaml: not valid YAML"),
        ("- a list", "bad.yaml: expected a mapping"),
        ("template: x", "bad.yaml: field 'name' is missing"),
        ("name: x", "bad.yaml: field 'template' is missing"),
        ("name: x\ntemplate: y\ntemprature: 0", "bad.yaml: field 'temprature' is not a prompt field"),
        ("name: x\ntemplate: y\ntemperature: hot", "bad.yaml: field 'temperature' must be a number"),
        (
            "name: x\ntemplate: y\ntemperature: 3",
            "bad.yaml: field 'temperature' must be a number from 0 to 2",
        ),
        ("name: x\ntemplate: y\nmax_tokens: 1.5", "bad.yaml: field 'max_tokens' must be a whole number"),
        ("name: x\ntemplate: y\nversion: 0", "bad.yaml: field 'version' must be a whole number"),
        ("name: x\ntemplate: y\nsystem: 5", "bad.yaml: field 'system' must be text"),
        ("name: x\ntemplate: y\nexamples: [{user: a}]", "bad.yaml: field 'examples' item 1 must have"),
        (
            "name: x\ntemplate: y\noutput_columns: [a, a]",
            "bad.yaml: field 'output_columns' lists a name twice",
        ),
        ("name: x\ntemplate: y\njson_schema: {type: string}", "bad.yaml: field 'json_schema' must be"),
        (
            "name: x\ntemplate: y\njson_schema: {type: object, properties: {a: {type: string}}}\n"
            "output_columns: [b]",
            "bad.yaml: field 'output_columns' must match",
        ),
        (
            "name: x\ntemplate: y\njson_schema: {type: object, properties: {a: {enum: [p, q]}}}\n"
            'examples: [{user: u, assistant: \'{"a": "r"}\'}]',
            "bad.yaml: field 'examples' item 1's answer does not fit the schema: 'r' is not one of",
        ),
        (
            "name: x\ntemplate: '{{ City }} {{ Title }}'\noptional_fields: [Industry]",
            "bad.yaml: field 'optional_fields' names 'Industry', which is not a placeholder of the prompt "
            "(have: City, Title)",
        ),
        (
            "name: x\ntemplate: '{{ City }}'\noptional_fields: City",
            "bad.yaml: field 'optional_fields' must be a list",
        ),
    ],
)
def test_parse_errors_name_file_and_field(text, message):
    with pytest.raises(PromptLibraryError) as info:
        parse_spec(text, source="bad.yaml")
    assert str(info.value).startswith(message)


def test_save_new_refuses_to_overwrite(lib):
    path = lib.save_new(SPEC)
    assert path.name == "pain-points.yaml" and lib.load("Pain points") == SPEC
    before = path.read_bytes()
    for clash in (
        SPEC,
        replace(SPEC, name="PAIN POINTS", template="other"),
        replace(SPEC, name="pain-points!"),
    ):
        with pytest.raises(PromptLibraryError, match="already exists"):
            lib.save_new(clash)
    assert path.read_bytes() == before
    with pytest.raises(PromptLibraryError, match="already exists"):
        lib.save_new(replace(PromptLibrary().load("icebreaker"), template="mine"))
    assert not [p for p in lib.directory.iterdir() if p.name.startswith(".")]  # no temp files left


def test_save_version_bumps_and_detects_conflicts(lib):
    lib.save_new(SPEC)
    mine = lib.load("Pain points")
    theirs = lib.load("Pain points")
    saved = lib.save_version(replace(theirs, template="theirs {{ Title }}"), expected_version=theirs.version)
    assert saved.version == 2 and lib.load("Pain points") == saved
    with pytest.raises(PromptLibraryError, match="changed by someone else"):
        lib.save_version(replace(mine, template="mine {{ Title }}"), expected_version=mine.version)
    assert lib.load("Pain points").template == "theirs {{ Title }}"
    again = lib.save_version(replace(saved, temperature=0.9), expected_version=2)
    assert again.version == 3 and lib.load("pain-points").temperature == 0.9
    with pytest.raises(PromptLibraryError, match="No prompt named"):
        lib.save_version(replace(SPEC, name="Nope"), expected_version=1)


def test_duplicate_and_delete(lib):
    copy = lib.duplicate("Icebreaker", "Icebreaker (French)")
    assert copy.version == 1 and copy.template == lib.load("icebreaker").template
    assert (lib.directory / "icebreaker-french.yaml").exists()
    assert "Icebreaker (French)" in lib.names()
    with pytest.raises(PromptLibraryError, match="already exists"):
        lib.duplicate("Icebreaker", "icebreaker")
    lib.delete("Icebreaker (French)")
    assert "Icebreaker (French)" not in lib.names()
    with pytest.raises(PromptLibraryError, match="No prompt named 'Icebreaker \\(French\\)'"):
        lib.delete("Icebreaker (French)")


def test_load_by_path_and_broken_files(lib, tmp_path):
    outside = tmp_path / "elsewhere.yaml"
    outside.write_text(dump_spec(SPEC), encoding="utf-8")
    assert lib.load(str(outside)) == SPEC
    (lib.directory / "broken.yaml").write_text("name: x\n", encoding="utf-8")
    assert len(lib.list()) == len(EXPECTED)  # one broken file does not hide the others
    assert lib.errors() == ["broken.yaml: field 'template' is missing"]
    with pytest.raises(PromptLibraryError, match="have: Column transformation"):
        lib.load("nothing-like-this")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Icebreaker", "icebreaker"),
        ("Company name normalisation", "company-name-normalisation"),
        ("  Icebreaker (French) v2! ", "icebreaker-french-v2"),
        ("Café", "caf"),
    ],
)
def test_slug(name, expected):
    assert PromptLibrary.slug(name) == expected


def test_slug_needs_a_letter():
    with pytest.raises(PromptLibraryError):
        library.slug("!!!")
