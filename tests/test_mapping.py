"""Fitting a prompt to a file: suggestion rules (near misses included), apply, --map arguments, the fit."""

from __future__ import annotations

import pytest

from lib.prompts import mapping
from lib.prompts.checks import Checks
from lib.prompts.library import PromptLibrary
from lib.prompts.mapping import MappingError, Suggestion, apply, fit, mapped_spec, parse_map_args, suggest
from lib.prompts.templates import Example, PromptSpec, check, placeholders, render_messages
from tests import crm_exports


@pytest.mark.parametrize(
    ("placeholder", "columns", "column", "rule"),
    [
        ("Company", ["Company", "Company Name"], "Company", "exact"),
        ("First Name", ["First Name "], "First Name ", "exact"),  # padded header: rendering accepts it
        ("first_name", ["Email", "First Name"], "First Name", "case and spacing"),
        ("First Name", ["FIRST_NAME"], "FIRST_NAME", "case and spacing"),
        ("# Employees", ["Employees"], "Employees", "case and spacing"),
        ("Website URL", ["website-url"], "website-url", "case and spacing"),
        ("Company", ["Email", "Company Name"], "Company Name", "synonym"),
        ("Company", ["Account Name"], "Account Name", "synonym"),
        ("Company", ["Organisation"], "Organisation", "synonym"),
        ("Company", ["Company / Account"], "Company / Account", "synonym"),  # Salesforce report
        ("Title", ["Job Title"], "Job Title", "synonym"),
        ("Title", ["Position"], "Position", "synonym"),
        ("First Name", ["Given Name"], "Given Name", "synonym"),
        ("Last Name", ["Surname"], "Surname", "synonym"),
        ("# Employees", ["Number of Employees"], "Number of Employees", "synonym"),
        ("# Employees", ["Headcount"], "Headcount", "synonym"),
        ("Industry", ["Sector"], "Sector", "synonym"),
        ("City", ["Geography"], "Geography", "synonym"),  # Sales Navigator
        ("Website", ["Website URL"], "Website URL", "synonym"),  # HubSpot
        ("Email", ["Email Address"], "Email Address", "synonym"),
        ("Website Content", ["website_text"], "website_text", "synonym"),  # Read websites adds it
        ("Company Name", ["Company"], "Company", "synonym"),  # either way round
        ("Compnay", ["Email", "Company"], "Company", "similar"),  # a typo
        ("Industy", ["Industry"], "Industry", "similar"),
        ("Job Titel", ["Job Title", "Email"], "Job Title", "similar"),
        # near misses: not the same field
        ("Company", ["Company Size"], None, None),
        ("Company", ["Company City", "Company State", "Company Phone"], None, None),
        ("Website", ["Website Content"], None, None),
        ("Website", ["website_text"], None, None),
        ("Website Content", ["Website"], None, None),
        ("City", ["Company"], None, None),
        ("Title", ["Email", "Phone"], None, None),
        ("Industry", [], None, None),
    ],
)
def test_suggestion_rules(placeholder, columns, column, rule):
    assert suggest([placeholder], columns) == {placeholder: Suggestion(column, rule)}


@pytest.mark.parametrize(
    ("placeholders", "columns", "expected"),
    [
        # the better rule wins the column, whatever the placeholder order
        (["Company Name", "Company"], ["Company"], {"Company Name": None, "Company": "Company"}),
        (["Company", "Account"], ["Account"], {"Company": None, "Account": "Account"}),
        # a column goes to one placeholder only
        (["Company", "Organisation"], ["Company Name"], {"Company": "Company Name", "Organisation": None}),
        (
            ["First Name", "Last Name", "Title", "Company"],
            ["Firstname", "Surname", "Job Title", "Account Name"],
            {
                "First Name": "Firstname",
                "Last Name": "Surname",
                "Title": "Job Title",
                "Company": "Account Name",
            },
        ),
        # an exact column serves its placeholder even where a synonym could have taken it
        (
            ["Organisation", "Company"],
            ["Company", "Organisation"],
            {"Organisation": "Organisation", "Company": "Company"},
        ),
    ],
)
def test_each_column_goes_to_one_placeholder(placeholders, columns, expected):
    assert {p: s.column for p, s in suggest(placeholders, columns).items()} == expected


@pytest.mark.parametrize(
    ("export", "expected"),
    [
        (crm_exports.hubspot, {"First Name": "First Name", "Company": "Company Name", "Title": None}),
        (crm_exports.salesforce_report, {"Company": "Company / Account", "Title": None}),
        (crm_exports.sales_navigator, {"Title": "Title", "Company": "Company", "City": "Geography"}),
        (crm_exports.apollo60, {"Company": "Company", "# Employees": "# Employees", "City": "City"}),
    ],
    ids=lambda e: getattr(e, "__name__", ""),
)
def test_suggestions_on_real_export_headers(export, expected):
    found = suggest(list(expected), export().header)
    assert {p: s.column for p, s in found.items()} == expected


ICEBREAKER = PromptLibrary().load("Icebreaker")


@pytest.mark.parametrize(
    ("names", "template_has", "system"),
    [
        ({"Company": "Company Name"}, "Company: {{ Company Name }}", ""),
        ({"Company": "Account", "Title": "Job Title"}, "Title: {{ Job Title }}\nCompany: {{ Account }}", ""),
        ({"Company": None, "Title": ""}, "Company: {{ Company }}", ""),  # unmapped: left as is
        ({"Company": 'Company "legal"'}, 'Company: {{ Company \\"legal\\" }}', ""),
        ({"# Employees": "Size {band}"}, "Employees: {{ Size \\{band\\} }}", ""),
    ],
)
def test_apply_renames_placeholders(names, template_has, system):
    mapped = apply(ICEBREAKER, names)
    assert template_has in mapped.template
    assert mapped.examples == ICEBREAKER.examples and mapped.name == ICEBREAKER.name
    assert ICEBREAKER.template.count("{{") == mapped.template.count("{{")


def test_apply_renames_system_optional_fields_and_mentions():
    spec = PromptSpec(
        name="t",
        system="You write to people at {{ Company }}.",
        template="{{ Company }} / {{ Industry }}",
        optional_fields=("Industry",),
        checks=Checks(mention=("Company",)),
    )
    mapped = apply(spec, {"Company": "Account Name", "Industry": "Sector"})
    assert mapped.system == "You write to people at {{ Account Name }}."
    assert mapped.template == "{{ Account Name }} / {{ Sector }}"
    assert mapped.optional_fields == ("Sector",) and mapped.checks.mention == ("Account Name",)
    row = {"Account Name": "Acme", "Sector": "Retail"}
    assert check(mapped, list(row)) == []
    messages = render_messages(mapped, row)
    assert messages[0]["content"].startswith("You write to people at <data>Acme</data>.")
    assert messages[-1]["content"] == "<data>Acme</data> / <data>Retail</data>"


def test_apply_reaches_headers_the_grammar_cannot_hold():
    columns = ['Company "legal"', "Revenue {USD}", "Annual\nNotes"]
    spec = PromptSpec(name="t", template="{{ Company }} {{ Revenue }} {{ Notes }}")
    mapped = apply(spec, dict(zip(["Company", "Revenue", "Notes"], columns, strict=True)))
    assert placeholders(mapped.template) == columns and check(mapped, columns) == []
    row = dict(zip(columns, ["Acme", "5M", "x"], strict=True))
    assert render_messages(mapped, row)[-1]["content"] == "<data>Acme</data> <data>5M</data> <data>x</data>"


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ([], {}),
        (["Company=Company Name"], {"Company": "Company Name"}),
        ([" Title = Job Title "], {"Title": "Job Title"}),
        (
            ["# Employees=Number of Employees", "City=Town"],
            {"# Employees": "Number of Employees", "City": "Town"},
        ),
        (["Formula=a=b"], {"Formula": "a=b"}),  # the first "=" splits
    ],
)
def test_parse_map_args(items, expected):
    assert parse_map_args(items) == expected


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["Company"], "--map needs PLACEHOLDER=COLUMN, got 'Company'"),
        (["=Company Name"], "--map needs PLACEHOLDER=COLUMN, got '=Company Name'"),
        (["Company="], "--map needs PLACEHOLDER=COLUMN, got 'Company='"),
        (["Company=A", "Company=B"], "--map names the placeholder 'Company' twice"),
    ],
)
def test_parse_map_args_errors(items, message):
    with pytest.raises(MappingError) as info:
        parse_map_args(items)
    assert str(info.value) == message


HUBSPOT = ["First Name", "Last Name", "Email", "Job Title", "Company Name", "Industry"]


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (
            ["Compny=Company Name"],
            "The prompt has no placeholder 'Compny' (it has: First Name, Title, Company,",
        ),
        (
            ["Company=Account"],
            "There is no column named 'Account' to map 'Company' to (the file has: First Name,",
        ),
    ],
)
def test_mapped_spec_names_what_exists(items, message):
    with pytest.raises(MappingError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        mapped_spec(ICEBREAKER, HUBSPOT, items)


def test_mapped_spec_applies_and_returns_the_mapping():
    spec, used = mapped_spec(ICEBREAKER, HUBSPOT, ["Company=Company Name", "Title=Job Title"])
    assert used == {"Company": "Company Name", "Title": "Job Title"}
    assert check(spec, HUBSPOT) == []  # City and # Employees are optional


@pytest.mark.parametrize(
    ("columns", "given", "expected", "ok"),
    [
        (
            HUBSPOT,
            None,
            [
                ("First Name", "First Name", "matches"),
                ("Title", "Job Title", "suggested"),
                ("Company", "Company Name", "suggested"),
                ("Industry", "Industry", "matches"),
                ("City", None, "optional, sent empty"),
                ("# Employees", None, "optional, sent empty"),
            ],
            False,  # suggestions are not confirmed yet
        ),
        (
            HUBSPOT,
            {"Title": "Job Title", "Company": "Company Name"},
            [
                ("First Name", "First Name", "matches"),
                ("Title", "Job Title", "mapped"),
                ("Company", "Company Name", "mapped"),
                ("Industry", "Industry", "matches"),
                ("City", None, "optional, sent empty"),
                ("# Employees", None, "optional, sent empty"),
            ],
            True,
        ),
        (
            ["Email", "Phone"],
            {"Company": "Nope"},
            [
                ("First Name", None, "missing"),
                ("Title", None, "missing"),
                ("Company", None, "missing"),
                ("Industry", None, "optional, sent empty"),
                ("City", None, "optional, sent empty"),
                ("# Employees", None, "optional, sent empty"),
            ],
            False,
        ),
        (
            ["First Name", "Title", "Company", "Sector"],  # an optional field with a suggestion still runs
            None,
            [
                ("First Name", "First Name", "matches"),
                ("Title", "Title", "matches"),
                ("Company", "Company", "matches"),
                ("Industry", "Sector", "suggested"),
                ("City", None, "optional, sent empty"),
                ("# Employees", None, "optional, sent empty"),
            ],
            True,
        ),
        (
            ["First Name", "Title", "Company", "Sector"],
            {"Industry": None},  # the user declined the suggestion: it stays declined
            [
                ("First Name", "First Name", "matches"),
                ("Title", "Title", "matches"),
                ("Company", "Company", "matches"),
                ("Industry", None, "optional, sent empty"),
                ("City", None, "optional, sent empty"),
                ("# Employees", None, "optional, sent empty"),
            ],
            True,
        ),
    ],
    ids=["suggested", "mapped", "missing", "optional-suggested", "declined"],
)
def test_fit_rows(columns, given, expected, ok):
    found = fit(ICEBREAKER, columns, given)
    assert [(r.placeholder, r.column, r.status) for r in found.rows] == expected
    assert found.ok is ok
    assert all(r.note for r in found.rows)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, [("Company", "Company", "matches"), ("Company Name", None, "missing")]),
        (
            {"Company Name": "Account"},
            [("Company", "Company", "matches"), ("Company Name", "Account", "mapped")],
        ),
    ],
)
def test_fit_never_suggests_a_column_another_placeholder_reads(given, expected):
    spec = PromptSpec(name="t", template="{{ Company }} {{ Company Name }}")
    found = fit(spec, ["Company", "Account"] if given else ["Company"], given)
    assert [(r.placeholder, r.column, r.status) for r in found.rows] == expected


def test_fit_mapping_is_what_to_apply():
    found = fit(ICEBREAKER, HUBSPOT)
    assert found.mapping() == {"Title": "Job Title", "Company": "Company Name"}
    assert fit(ICEBREAKER, HUBSPOT, found.mapping()).ok
    assert check(apply(ICEBREAKER, found.mapping()), HUBSPOT) == []


@pytest.mark.parametrize(
    ("columns", "given", "notes"),
    [
        (["First Name", "Title", "Company", "Industry", "City", "# Employees"], None, ()),
        (
            ["First Name", "Title", "Company"],
            None,
            (
                "Examples 1, 2 and 3 mention Industry, City and Employees, which this file does not have: "
                "the model may expect them.",
            ),
        ),
        (
            ["First Name", "Title", "Company", "Sector", "Town"],
            {"Industry": "Sector", "City": "Town"},  # after mapping only Employees is lacking
            (
                "Examples 1, 2 and 3 mention Employees, which this file does not have: the model may expect it.",
            ),
        ),
    ],
)
def test_example_notes_on_the_icebreaker(columns, given, notes):
    assert fit(ICEBREAKER, columns, given).example_notes == notes


@pytest.mark.parametrize(
    ("examples", "notes"),
    [
        (
            (Example("Sector: <data>Retail</data>", "a"),),
            ("Example 1 mentions Sector, which this file does not have: the model may expect it.",),
        ),
        (
            (Example("SECTOR - <data>x</data>", "a"),),
            ("Example 1 mentions Sector, which this file does not have: the model may expect it.",),
        ),
        (
            (Example("vertical_market: <data>x</data>", "a"),),
            ("Example 1 mentions vertical market, which this file does not have: the model may expect it.",),
        ),
        (
            (Example("Name: <data>Jo</data>", "a"), Example("Sector: <data></data>", "b")),
            ("Example 2 mentions Sector, which this file does not have: the model may expect it.",),
        ),
        ((Example("Name: <data>Jo</data>", "a"),), ()),
        ((Example("Sectoral: <data>x</data>", "a"),), ()),  # a whole word, not part of one
    ],
)
def test_example_mentions_by_label_or_name(examples, notes):
    spec = PromptSpec(
        name="t",
        template="Name: {{ Name }}\nSector: {{ vertical market }}",
        examples=examples,
        optional_fields=("vertical market",),
    )
    assert fit(spec, ["Name"]).example_notes == notes


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("Industry: {{ Industry }}", {"Industry": "Industry"}),
        (
            "Vendor industry: {{ Industry }}\nCity = {{ City }}",
            {"Industry": "Vendor industry", "City": "City"},
        ),
        ("{{ First Name }} {{ Last Name }}", {}),
        ("Write one line to this person, who works at {{ Company }}", {}),  # a sentence is not a label
    ],
)
def test_labels(template, expected):
    assert mapping.labels(template) == expected
