"""Fit a prompt to a lead file: which column each placeholder reads, suggested, confirmed, applied.

Suggestions, best first, for each placeholder the file has no exact column for:
    exact             the header itself (or the header with padding trimmed, as rendering accepts)
    case and spacing  equal once case, spaces, underscores and punctuation are ignored
                      ("first_name" ~ "First Name", "# Employees" ~ "Employees")
    synonym           another name for the same field in a CRM export (SYNONYMS below)
    similar           a close spelling (difflib), only when nothing better fits, and never a column that
                      is a known name of another field ("Company Size" is not "Company")
A column goes to one placeholder only. Applying a mapping renames the placeholders in the template and
the system text (`{{ Company }}` -> `{{ Company Name }}`), so the prompt then runs on that file as is.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from lib.prompts import templates
from lib.prompts.templates import PromptSpec

RULES = ("exact", "case and spacing", "synonym", "similar")
SIMILAR_CUTOFF = 0.75

# Field -> the other names CRM and list exports give it (HubSpot, Salesforce, Apollo, LinkedIn Sales
# Navigator and Connections, ZoomInfo-style lists). Compared after `folded`, so case and spacing are free.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "Company": (
        "Company Name",
        "Account Name",
        "Account",
        "Organization",
        "Organisation",
        "Organization Name",
        "Company / Account",  # Salesforce lead reports
        "Company Name for Emails",  # Apollo
        "Employer",
        "Current Company",  # LinkedIn
    ),
    "Title": ("Job Title", "Position", "Role", "Job Role", "Designation", "Current Title"),
    "First Name": ("Firstname", "Given Name", "First", "Forename"),
    "Last Name": ("Lastname", "Surname", "Family Name", "Last"),
    "Full Name": ("Name", "Contact Name", "Lead Name", "Contact"),
    "# Employees": (
        "Employees",
        "Number of Employees",  # HubSpot, Salesforce
        "No. of Employees",
        "Employee Count",
        "Headcount",
        "Company Size",  # LinkedIn
        "Company Headcount",
    ),
    "Industry": ("Sector", "Vertical", "Company Industry"),
    "City": (
        "Town",
        "Location",
        "Geography",
        "Company City",
        "Billing City",
        "Mailing City",
    ),  # Sales Navigator: Geography; Salesforce: Billing/Mailing City
    "Country": ("Country/Region", "Company Country", "Nation"),
    "Website": (
        "Website URL",  # HubSpot
        "Company Website",
        "Company Domain Name",  # HubSpot companies
        "Domain",
        "URL",
        "Web Site",
    ),
    "Email": ("Email Address", "Work Email", "E-mail", "Business Email"),
    "Phone": ("Phone Number", "Work Phone", "Work Direct Phone", "Corporate Phone", "Mobile Phone"),
    "LinkedIn": ("Person Linkedin Url", "LinkedIn URL", "LinkedIn Profile", "Profile URL"),
    "Website Content": ("website_text", "Website Text"),  # the column "Read websites" adds
}


class MappingError(ValueError):
    """A --map argument or mapping that cannot be used; the message names what exists."""


@dataclass(frozen=True)
class Suggestion:
    column: str | None
    rule: str | None  # one of RULES, None when nothing fits


@dataclass(frozen=True)
class FitRow:
    placeholder: str
    column: str | None
    status: str  # "matches", "mapped", "suggested", "optional, sent empty", "missing"
    note: str
    optional: bool = False


@dataclass(frozen=True)
class Fit:
    rows: tuple[FitRow, ...]
    example_notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """The prompt runs on this file as mapped: every required placeholder has its column."""
        return all(r.status in ("matches", "mapped", "optional, sent empty") or r.optional for r in self.rows)

    def mapping(self) -> dict[str, str]:
        """{placeholder: column} for the rows that need renaming (mapped, or suggested: to confirm)."""
        return {
            r.placeholder: r.column
            for r in self.rows
            if r.column is not None and r.status in ("mapped", "suggested") and r.column != r.placeholder
        }


def folded(name: str) -> str:
    """A name with case, spaces, underscores and punctuation left out: "# Employees" -> "employees"."""
    return "".join(ch for ch in str(name).casefold() if ch.isalnum())


def _groups() -> dict[str, int]:
    """Folded name -> its synonym group's number."""
    out: dict[str, int] = {}
    for number, (field, others) in enumerate(SYNONYMS.items()):
        for name in (field, *others):
            out.setdefault(folded(name), number)
    return out


_GROUP = _groups()


def _rule_for(placeholder: str, column: str) -> str | None:
    if templates.column_for(placeholder, [column]) is not None:
        return "exact"
    a, b = folded(placeholder), folded(column)
    if a and a == b:
        return "case and spacing"
    if a in _GROUP and _GROUP[a] == _GROUP.get(b):
        return "synonym"
    return None


def _similarity(placeholder: str, column: str) -> float:
    """How alike two spellings are (0..1), for typos: 0 for a column that is a known name of another field,
    or that only adds words ("Company" is not "Company State")."""
    a, b = folded(placeholder), folded(column)
    if not a or not b or a in b or b in a:
        return 0.0
    if a in _GROUP and b in _GROUP and _GROUP[a] != _GROUP[b]:
        return 0.0
    ratio = difflib.SequenceMatcher(None, a, b).ratio()
    return ratio if ratio >= SIMILAR_CUTOFF else 0.0


def suggest(placeholders: Sequence[str], columns: Sequence[str]) -> dict[str, Suggestion]:
    """The best column for each placeholder, rule by rule (exact first); each column used at most once."""
    names = list(dict.fromkeys(placeholders))
    columns = [str(c) for c in columns]
    out: dict[str, Suggestion] = {}
    taken: set[str] = set()
    for rule in RULES[:3]:
        for name in names:
            if name in out:
                continue
            # an exact column may serve two placeholders (they read the same cell); others may not
            free = [c for c in columns if rule == "exact" or c not in taken]
            hit = next((c for c in free if _rule_for(name, c) == rule), None)
            if hit is not None:
                out[name] = Suggestion(hit, rule)
                taken.add(hit)
    pairs = sorted(
        (
            (-score, names.index(name), columns.index(column), name, column)
            for name in names
            if name not in out
            for column in columns
            if column not in taken and (score := _similarity(name, column)) > 0
        ),
    )
    for _, _, _, name, column in pairs:  # the closest pairs first
        if name not in out and column not in taken:
            out[name] = Suggestion(column, "similar")
            taken.add(column)
    return {name: out.get(name, Suggestion(None, None)) for name in names}


# ---------------------------------------------------------------------------------------------- applying


def _clean(mapping: Mapping[str, str | None]) -> dict[str, str]:
    return {p: c for p, c in mapping.items() if c and c != p}


def apply(spec: PromptSpec, mapping: Mapping[str, str | None]) -> PromptSpec:
    """A copy reading the mapped columns: placeholders renamed in the template and the system text, and in
    optional_fields, the must-mention check and one_answer_per. A placeholder mapped to None or "" is left
    as it is."""
    names = _clean(mapping)
    if not names:
        return spec
    checks = spec.checks
    if checks.mention:
        checks = replace(checks, mention=tuple(names.get(c, c) for c in checks.mention))
    return replace(
        spec,
        system=templates.rename_placeholders(spec.system, names),
        template=templates.rename_placeholders(spec.template, names),
        optional_fields=tuple(dict.fromkeys(names.get(f, f) for f in spec.optional_fields)),
        checks=checks,
        one_answer_per=names.get(spec.one_answer_per, spec.one_answer_per) if spec.one_answer_per else None,
    )


def parse_map_args(items: Sequence[str]) -> dict[str, str]:
    """`--map PLACEHOLDER=COLUMN` arguments as {placeholder: column}; the first "=" splits."""
    out: dict[str, str] = {}
    for item in items:
        placeholder, sep, column = item.partition("=")
        placeholder, column = placeholder.strip(), column.strip()
        if not sep or not placeholder or not column:
            raise MappingError(f"--map needs PLACEHOLDER=COLUMN, got {item!r}")
        if placeholder in out:
            raise MappingError(f"--map names the placeholder '{placeholder}' twice")
        out[placeholder] = column
    return out


def spec_placeholders(spec: PromptSpec) -> list[str]:
    """The placeholders filled from the row: the system text's, then the template's."""
    return templates.spec_placeholders(spec)


def validate(spec: PromptSpec, columns: Sequence[str], mapping: Mapping[str, str | None]) -> None:
    """Refuse a mapping naming a placeholder the prompt lacks or a column the file lacks."""
    have = spec_placeholders(spec)
    columns = [str(c) for c in columns]
    for placeholder, column in mapping.items():
        if placeholder not in have:
            raise MappingError(
                f"The prompt has no placeholder '{placeholder}' (it has: {', '.join(have) or 'none'})."
            )
        if column and templates.column_for(column, columns) is None:
            raise MappingError(
                f"There is no column named '{column}' to map '{placeholder}' to "
                f"(the file has: {', '.join(columns) or 'no columns'})."
            )


def mapped_spec(
    spec: PromptSpec, columns: Sequence[str], map_args: Sequence[str]
) -> tuple[PromptSpec, dict[str, str]]:
    """The prompt with `--map` arguments applied, and the mapping used; raises MappingError."""
    mapping = parse_map_args(map_args)
    validate(spec, columns, mapping)
    return apply(spec, mapping), mapping


# ------------------------------------------------------------------------------------------------ the fit


def fit(spec: PromptSpec, columns: Sequence[str], mapping: Mapping[str, str | None] | None = None) -> Fit:
    """Each placeholder's column and status on this file, plus notes on examples mentioning what is missing.

    `mapping` is what the user confirmed: {placeholder: column}; a placeholder set to None or "" was
    declined (no column: sent empty if optional, else missing) and gets no suggestion.
    """
    columns = [str(c) for c in columns]
    mapping = dict(mapping or {})
    names = spec_placeholders(spec)
    optional = set(spec.optional_fields)
    mapped = {p: c for p, c in mapping.items() if c and p in names}
    # a placeholder the user set to no column gets no suggestion: it stays as chosen
    declined = {p for p, c in mapping.items() if not c}
    open_names = [
        n for n in names if n not in mapped and n not in declined and templates.column_for(n, columns) is None
    ]
    used = set(mapped.values()) | {
        c for n in names if n not in mapped and (c := templates.column_for(n, columns)) is not None
    }
    free_columns = [c for c in columns if c not in used]  # a column read already is not suggested again
    suggestions = suggest(open_names, free_columns)
    rows = []
    for name in names:
        is_optional = name in optional
        if name in mapped:
            column = mapped[name]
            if templates.column_for(column, columns) is None:
                rows.append(FitRow(name, None, "missing", f"The file has no column '{column}'.", is_optional))
            elif column == name:
                rows.append(FitRow(name, column, "matches", f"Reads '{column}'.", is_optional))
            else:
                rows.append(FitRow(name, column, "mapped", f"Reads '{column}'.", is_optional))
            continue
        exact = templates.column_for(name, columns)
        if exact is not None:
            rows.append(FitRow(name, exact, "matches", f"Reads '{exact}'.", is_optional))
            continue
        hint = suggestions.get(name, Suggestion(None, None))
        if hint.column is not None:
            also = " It is optional: left unmapped, it is sent empty." if is_optional else ""
            note = (
                f"No column '{name}': '{hint.column}' looks like it ({hint.rule}). Confirm to use it.{also}"
            )
            rows.append(FitRow(name, hint.column, "suggested", note, is_optional))
        elif is_optional:
            note = f"No column '{name}': it is optional, so it is sent empty."
            rows.append(FitRow(name, None, "optional, sent empty", note, True))
        else:
            note = f"No column '{name}' and none like it: map it to a column of the file."
            rows.append(FitRow(name, None, "missing", note, False))
    result = Fit(tuple(rows))
    lacking = [r.placeholder for r in rows if r.status in ("missing", "optional, sent empty")]
    return Fit(result.rows, example_notes(spec, lacking))


_WORD_GAP = re.compile(r"[^0-9a-z]+")


def _words(text: str) -> str:
    """Lower-case words separated by single spaces, padded: ' industry city '."""
    return " " + " ".join(_WORD_GAP.sub(" ", text.casefold()).split()) + " "


def labels(template: str) -> dict[str, str]:
    """Each placeholder's label: the short text before it on its line ("Industry:" -> "Industry")."""
    out: dict[str, str] = {}
    for line in template.splitlines():
        before = ""
        for raw, name in templates.segments(line):
            if name is None:
                before += raw
                continue
            label = before.strip().rstrip(":=-–—").strip()
            if label and len(label) <= 40 and len(label.split()) <= 4:
                out.setdefault(name, label)
            before = ""
    return out


def example_notes(spec: PromptSpec, lacking: Sequence[str]) -> tuple[str, ...]:
    """Few-shot examples whose user turn mentions a field in `lacking`, by its label or its name."""
    if not lacking or not spec.examples:
        return ()
    label_of = labels(spec.template)
    found: dict[tuple[str, ...], list[int]] = {}
    for number, example in enumerate(spec.examples, start=1):
        text = _words(example.user)
        mentions = []
        for name in lacking:
            for shown in (label_of.get(name), name):
                needle = _words(shown or "").strip()
                if needle and f" {needle} " in text:
                    mentions.append(shown)
                    break
        if mentions:
            found.setdefault(tuple(mentions), []).append(number)
    notes = []
    for mentions, numbers in found.items():
        which = f"Example {numbers[0]}" if len(numbers) == 1 else f"Examples {_and(map(str, numbers))}"
        verb = "mentions" if len(numbers) == 1 else "mention"
        them = "it" if len(mentions) == 1 else "them"
        notes.append(
            f"{which} {verb} {_and(mentions)}, which this file does not have: the model may expect {them}."
        )
    return tuple(notes)


def _and(items) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
