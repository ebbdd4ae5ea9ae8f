"""What the workbench shows of its variants and cells, as plain text (answers are never rendered as HTML)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from lib.models.advice import cut_short_words
from lib.prompts import checks as quality
from lib.views.labels import money
from lib.workbench.compare import Cell, VariantTotals

SEND_EMPTY = "(send empty)"  # the mapping table's choice for a field this file does not have


def cell_caption(cell: Cell) -> str:
    """'212 in · 31 out · $0.000041 · 0.8 s', or why there is no answer."""
    if cell.status == "pending":
        return "no answer yet"
    if cell.status == "skipped":
        return cell.error or "skipped"
    parts = [f"{cell.prompt_tokens:,} in", f"{cell.completion_tokens:,} out"]
    if cell.web_search_calls:
        parts.append(f"{cell.web_search_calls} search{'es' if cell.web_search_calls != 1 else ''}")
    if cell.reused:
        parts.append("reused, no cost")
    else:
        parts.append(money(cell.cost_usd))
        if cell.latency_s is not None:
            parts.append(f"{cell.latency_s:.1f} s")
    return " · ".join(parts)


def cell_sources(cell: Cell) -> str:
    """The pages an answer cites, one address a line ("" when it cites none)."""
    return "\n".join(cell.sources)


def cell_problems(cell: Cell, checks: quality.Checks, row: Mapping[str, str]) -> list[str]:
    """Plain sentences for what is wrong with an answer: the failure, or each quality check it breaks."""
    if cell.status == "failed":
        return [f"Failed: {cell.error or 'no answer'}"]
    if not cell.text:
        return []
    return [f.message for f in quality.check_answer(checks, cell.text, row)]


def totals_lines(
    totals: VariantTotals,
    projected: float | None,
    list_rows: int,
    *,
    max_tokens: int | None = None,
    effort: str | None = None,
) -> list[str]:
    """The header of a variant column: what the sample cost, and the whole list at that rate."""
    paid = "unpriced" if totals.cost_usd is None else money(totals.cost_usd)
    out = f"{totals.completion_tokens:,} out"
    if totals.reasoning_tokens:
        out += f" (of which {totals.reasoning_tokens:,} hidden reasoning)"
    lines = [f"Sample: {paid} · {totals.prompt_tokens:,} in · {out}"]
    extra = []
    if totals.mean_latency_s is not None:
        extra.append(f"{totals.mean_latency_s:.1f} s per answer")
    if totals.reused:
        extra.append(f"{totals.reused} reused")
    if totals.failed:
        extra.append(f"{totals.failed} failed")
    if totals.flagged:
        extra.append(f"{totals.flagged} flagged")
    if extra:
        lines.append(" · ".join(extra))
    if projected is not None:
        lines.append(f"All {list_rows:,} rows: about {money(projected)}")
    advice = cut_short_words(totals.spent, max_tokens, effort)
    if advice:
        lines.append(advice)
    return lines


def row_title(row_id: int, cells: Mapping[str, str], id_columns: Sequence[str]) -> str:
    """'row 3 · Maria Lopez · Northwind Logistics' from the identifying columns."""
    values = [str(cells.get(c, "")).strip() for c in id_columns]
    return " · ".join([f"row {row_id}", *[v for v in values if v]])


def differing_text(differing: int, total: int) -> str:
    if not total:
        return ""
    if not differing:
        return f"All {total} rows have the same answer in every variant."
    return f"{differing} of {total} rows have answers that differ."


def packing_line(
    packed: VariantTotals, alone: VariantTotals, alone_label: str, same_answers: int, answered_both: int
) -> str | None:
    """What packing changes against the same prompt one row per request, on the sample: cost and answers."""
    a, p = alone.cost_if_paid, packed.cost_if_paid
    if a is None or p is None or not a:
        return None
    change = (a - p) / a
    verb = f"{change:.0%} less" if change >= 0 else f"{-change:.0%} more"
    line = f"Against one row per request ({alone_label}): {money(p)} for the sample instead of {money(a)}, {verb}"
    if answered_both:
        line += f"; {same_answers} of {answered_both} answers the same"
    return line + "."


def try_progress(label: str, snap) -> tuple[float, str]:
    """(share done, 'Try 2: 3 of 5 rows answered · 1 failed') for a column whose try is running."""
    done = snap.succeeded + snap.failed + snap.skipped
    parts = [f"{label}: {snap.succeeded:,} of {snap.total:,} rows answered"]
    if snap.failed:
        parts.append(f"{snap.failed:,} failed")
    if snap.stall_kind == "429" and snap.next_try_s is not None:
        parts.append(f"the server asks to wait, next try in {snap.next_try_s:.0f} s")
    return (done / snap.total if snap.total else 0.0), " · ".join(parts)


def stopped_text(state) -> str | None:
    """Why a column's try left rows unanswered (lib.views.run_data.RunState), or None when it did not or
    still runs."""
    if state is None or state.active or not state.pending:
        return None
    if state.interrupted:
        return "Stopped when the server restarted before every row was answered."
    return f"Stopped: {state.message}" if state.message else f"Stopped ({state.status})."
