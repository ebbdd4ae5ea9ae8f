"""Variants side by side: one cell per (variant, row), the rows where answers differ, a word-level diff,
and each variant's totals and cost projected to the whole list. Pure: no I/O, no Streamlit.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from lib.models.advice import Spent
from lib.store import RowRecord

DiffKind = Literal["same", "added", "removed"]
# Words (letters and digits, with their combining marks and inner apostrophes), runs of spaces, and single
# punctuation marks: each is a token, so a diff never splits a word and joining tokens gives the text back.
# Chinese, Japanese and Korean are written without spaces: each of their characters is a token.
_MARK = "\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_LETTER = rf"(?:(?![{_CJK}])[\w{_MARK}])"
_TOKEN_RE = re.compile(rf"\s+|[{_CJK}]|{_LETTER}+(?:['’]{_LETTER}+)*|[^\w\s][{_MARK}]*")


@dataclass(frozen=True)
class Cell:
    """One variant's answer to one row. Tokens and cost are the record's: for a reused answer
    (`reused`), what the answer cost when it was first paid for; nothing was paid for it again."""

    row_id: int
    text: str | None
    status: str  # pending | succeeded | failed | skipped
    error: str | None
    flags: tuple[str, ...]
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None
    latency_s: float | None
    reused: bool
    reasoning_tokens: int = 0  # hidden thinking, part of completion_tokens
    finish_reason: str | None = None
    web_search_calls: int = 0  # billed web searches (web research), priced in cost_usd
    sources: tuple[str, ...] = ()  # the addresses the answer cites


def cell_of(record: RowRecord) -> Cell:
    return Cell(
        row_id=record.row_id,
        text=record.text,
        status=record.status,
        error=record.error,
        flags=record.flags,
        prompt_tokens=record.usage.prompt_tokens,
        completion_tokens=record.usage.completion_tokens,
        cost_usd=record.cost_usd,
        latency_s=record.latency_s,
        reused=record.from_cache,
        reasoning_tokens=record.usage.reasoning_tokens,
        finish_reason=record.finish_reason,
        web_search_calls=record.usage.web_search_calls,
        sources=tuple(s.url for s in record.sources),
    )


def pending_cell(row_id: int) -> Cell:
    """A row a variant has no answer for (yet)."""
    return Cell(row_id, None, "pending", None, (), 0, 0, None, None, False)


@dataclass(frozen=True)
class Matrix:
    row_ids: tuple[int, ...]
    variants: tuple[str, ...]
    cells: Mapping[tuple[str, int], Cell]  # (variant name, row id) -> cell; every pair is present

    def cell(self, variant: str, row_id: int) -> Cell:
        return self.cells.get((variant, row_id)) or pending_cell(row_id)


def build_matrix(row_ids: Sequence[int], answers: Mapping[str, Sequence[RowRecord]]) -> Matrix:
    """Variant name -> its run's rows, as a grid over `row_ids` (in that order). A row a variant has no
    record for is a pending cell; records of rows outside `row_ids` are left out."""
    ids = tuple(int(r) for r in row_ids)
    cells: dict[tuple[str, int], Cell] = {}
    for name, records in answers.items():
        by_id = {r.row_id: r for r in records}
        for row_id in ids:
            record = by_id.get(row_id)
            cells[(name, row_id)] = cell_of(record) if record is not None else pending_cell(row_id)
    return Matrix(ids, tuple(answers), cells)


def _normal(text: str | None) -> str | None:
    return None if text is None else " ".join(text.split()).casefold()


def differing_rows(matrix: Matrix) -> list[int]:
    """Rows whose answers are not all the same text, compared with runs of whitespace made one space and
    case folded ("Hi  Ann" equals "hi ann"). A row with no answer (a failure) differs from one with an
    answer; pending cells are left out of the comparison, so a row still coming in is not called different.
    """
    out = []
    for row_id in matrix.row_ids:
        cells = [matrix.cell(v, row_id) for v in matrix.variants]
        texts = {_normal(c.text) for c in cells if c.status != "pending"}
        if len(texts) > 1:
            out.append(row_id)
    return out


def _tokens(text: str) -> list[str]:
    return _TOKEN_RE.findall(text)


def word_diff(a: str, b: str) -> list[tuple[DiffKind, str]]:
    """Word-level difference from a to b, as ("same" | "removed" | "added", text) segments.

    Joining the "same" and "added" texts gives b exactly, and "same" plus "removed" gives a: punctuation
    and spacing are kept. Spaces between two changes are folded into them, so "quick brown" -> "slow red"
    reads as one change, not two with a space in common; in each change the removed text comes first.
    """
    ta, tb = _tokens(a), _tokens(b)
    raw: list[tuple[DiffKind, str]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, ta, tb, autojunk=False).get_opcodes():
        if op == "equal":
            raw.append(("same", "".join(ta[i1:i2])))
            continue
        if i2 > i1:
            raw.append(("removed", "".join(ta[i1:i2])))
        if j2 > j1:
            raw.append(("added", "".join(tb[j1:j2])))
    # Fold a whitespace-only "same" between two changes into both sides of the change.
    folded: list[tuple[DiffKind, str]] = []
    for k, (kind, text) in enumerate(raw):
        between = 0 < k < len(raw) - 1 and raw[k - 1][0] != "same" and raw[k + 1][0] != "same"
        if kind == "same" and between and not text.strip():
            folded += [("removed", text), ("added", text)]
        else:
            folded.append((kind, text))
    # Merge each run of changes into one removed then one added segment; merge neighbouring "same"s.
    out: list[tuple[DiffKind, str]] = []
    removed: list[str] = []
    added: list[str] = []

    def flush() -> None:
        if removed:
            out.append(("removed", "".join(removed)))
        if added:
            out.append(("added", "".join(added)))
        removed.clear()
        added.clear()

    for kind, text in folded:
        if kind == "same":
            flush()
            if out and out[-1][0] == "same":
                out[-1] = ("same", out[-1][1] + text)
            elif text:
                out.append(("same", text))
        elif kind == "removed":
            removed.append(text)
        else:
            added.append(text)
    flush()
    return out


def diff_text(a: str, b: str) -> str:
    """The word diff as plain text in git's --word-diff style: `[-old-]{+new+}` (to show as text, never HTML)."""
    marks = {"same": ("", ""), "removed": ("[-", "-]"), "added": ("{+", "+}")}
    return "".join(marks[kind][0] + text + marks[kind][1] for kind, text in word_diff(a, b))


@dataclass(frozen=True)
class VariantTotals:
    """One variant over the sample. Tokens and cost count what this variant paid for: a reused answer
    (the same request answered before, here or in any earlier run) adds 0. `cost_if_paid` is what its
    answers cost when they were paid for, reused ones included: the basis of project_cost."""

    name: str
    model: str
    rows: int
    answered: int  # rows with a succeeded answer (flagged ones included)
    failed: int
    flagged: int  # succeeded answers a check flagged
    reused: int  # answers taken from earlier paid answers, at no new cost
    cost_usd: float | None  # None when some billed answer has no price (an unpriced model)
    prompt_tokens: int
    completion_tokens: int
    mean_latency_s: float | None  # over answers actually sent (not reused, not batch)
    cost_if_paid: float | None = None
    billed_rows: int = 0  # rows whose answer was billed, now or when first paid for (cost_if_paid's rows)
    reasoning_tokens: int = 0  # of completion_tokens: hidden thinking, billed as output
    spent: tuple[Spent, ...] = ()  # each answered row's output, for the max-tokens advice


def totals(matrix: Matrix, variant: str, model: str) -> VariantTotals:
    cells = [matrix.cell(variant, r) for r in matrix.row_ids]
    paid = [c for c in cells if not c.reused]
    billed = [c for c in cells if c.prompt_tokens or c.completion_tokens]
    latencies = [c.latency_s for c in paid if c.latency_s is not None]
    return VariantTotals(
        name=variant,
        model=model,
        rows=len(cells),
        answered=sum(c.status == "succeeded" for c in cells),
        failed=sum(c.status == "failed" for c in cells),
        flagged=sum(c.status == "succeeded" and bool(c.flags) for c in cells),
        reused=sum(c.reused for c in cells),
        cost_usd=_sum_cost([c for c in billed if not c.reused]),
        prompt_tokens=sum(c.prompt_tokens for c in paid),
        completion_tokens=sum(c.completion_tokens for c in paid),
        mean_latency_s=sum(latencies) / len(latencies) if latencies else None,
        cost_if_paid=_sum_cost(billed),
        billed_rows=len(billed),
        reasoning_tokens=sum(c.reasoning_tokens for c in paid),
        spent=tuple(
            Spent(c.completion_tokens, c.reasoning_tokens, c.finish_reason)
            for c in cells
            if c.status == "succeeded"
        ),
    )


def _sum_cost(cells: Sequence[Cell]) -> float | None:
    """Their cost; None when a billed answer has none (unpriced); 0.0 for no cells."""
    if any(c.cost_usd is None for c in cells):
        return None
    return sum((c.cost_usd or 0.0 for c in cells), 0.0)


def project_cost(totals: VariantTotals, list_rows: int) -> float | None:
    """This variant over the whole list: the sample's cost per billed answer (what its answers cost when
    paid for, so a sample answered entirely from earlier answers still projects) times `list_rows`.

    It assumes the list's rows cost what the sample's do on average and counts no reuse within the list;
    None when the sample has no billed answer or no price.
    """
    if totals.cost_if_paid is None or totals.billed_rows == 0:
        return None
    return totals.cost_if_paid / totals.billed_rows * list_rows
