"""Pure chart builders: numbers in, plotly figure out (no Streamlit, no lead text, no model output).

Plotly renders a subset of HTML in titles, legends, hover text and annotations, so every string that
could come from a user (prompt names, status names, titles) goes through ``_safe`` first.
"""

from __future__ import annotations

import datetime as dt
import html
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import plotly.graph_objects as go

MAX_POINTS = 500  # the cost chart is redrawn twice a second during a run: keep it cheap to build
MINUTES_AFTER_S = 600  # beyond this the x axis reads in minutes
MAX_LABEL = 60

COST_COLOR = "#1f77b4"
TOKENS_COLOR = "#9aa5b1"
BUDGET_COLOR = "#d62728"
STATUS_ORDER = ("succeeded", "flagged", "failed", "pending", "skipped")
STATUS_COLORS = {
    "succeeded": "#2ca02c",
    "flagged": "#ff7f0e",
    "failed": "#d62728",
    "pending": "#c7c7c7",
    "skipped": "#8c8c8c",
}

Point = tuple[float, float, int]
T = TypeVar("T")


def _safe(text: object, limit: int = MAX_LABEL) -> str:
    """Plain text for a plotly label: shortened, and with ``& < >`` escaped so no tag is rendered."""
    value = str(text)
    if len(value) > limit:
        value = value[: limit - 1] + "…"
    return html.escape(value, quote=False)


def _base_layout(title: str | None, **extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "template": "plotly_white",
        "margin": {"l": 10, "r": 10, "t": 40 if title else 10, "b": 10},
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
    }
    if title:
        layout["title"] = {"text": _safe(title, 120)}
    layout.update(extra)
    return layout


def _empty(message: str, title: str | None = None) -> go.Figure:
    """A blank figure carrying a centred message, for 'nothing to show yet'."""
    return go.Figure(
        layout=_base_layout(
            title,
            xaxis={"visible": False},
            yaxis={"visible": False},
            annotations=[
                {
                    "text": _safe(message, 200),
                    "xref": "paper",
                    "yref": "paper",
                    "x": 0.5,
                    "y": 0.5,
                    "showarrow": False,
                    "font": {"size": 16},
                }
            ],
        )
    )


def downsample(items: Sequence[T], cap: int = MAX_POINTS) -> list[T]:
    """At most ``cap`` evenly spaced items, always the first and the last exactly."""
    if cap < 2:
        raise ValueError("cap must be at least 2")
    n = len(items)
    if n <= cap:
        return list(items)
    step = (n - 1) / (cap - 1)
    return [items[round(i * step)] for i in range(cap)]


def _money_format(top: float) -> str:
    # Small runs cost fractions of a cent: show enough digits to see them move.
    return ",.2f" if top >= 1 else ",.4~f"


def _budget_line(budget: float) -> tuple[dict[str, Any], dict[str, Any]]:
    shape = {
        "type": "line",
        "xref": "paper",
        "x0": 0,
        "x1": 1,
        "yref": "y",
        "y0": budget,
        "y1": budget,
        "line": {"color": BUDGET_COLOR, "dash": "dash", "width": 2},
        "name": "budget",
    }
    label = {
        "text": f"Budget ${budget:,.2f}",
        "xref": "paper",
        "x": 0,
        "xanchor": "left",
        "yref": "y",
        "y": budget,
        "yanchor": "bottom",
        "showarrow": False,
        "font": {"color": BUDGET_COLOR},
    }
    return shape, label


def cost_over_time(
    points: Sequence[Point], *, budget: float | None = None, title: str | None = None
) -> go.Figure:
    """Cumulative cost ($, left axis) and tokens (right axis) against elapsed time; dashed budget line if given.

    ``points`` are ``(elapsed seconds, cumulative cost USD, cumulative tokens)`` in time order.
    """
    if not points:
        figure = _empty("No requests yet", title)
        if budget is not None:
            shape, label = _budget_line(budget)
            figure.update_layout(shapes=[shape], annotations=[*figure.layout.annotations, label])
            figure.update_layout(yaxis={"visible": True, "range": [0, budget * 1.1 or 1], "tickprefix": "$"})
        return figure
    sample = downsample(points)
    in_minutes = sample[-1][0] >= MINUTES_AFTER_S
    scale, unit = (60.0, "min") if in_minutes else (1.0, "s")
    x = [p[0] / scale for p in sample]
    costs = [p[1] for p in sample]
    tokens = [p[2] for p in sample]
    top = max(max(costs), budget or 0.0)
    money = _money_format(top)
    cost_trace = go.Scatter(
        x=x,
        y=costs,
        name="Cost",
        mode="lines",
        line={"color": COST_COLOR, "width": 2},
        hovertemplate=f"%{{x:.1f}} {unit}<br>Cost $%{{y:{money}}}<extra></extra>",
    )
    token_trace = go.Scatter(
        x=x,
        y=tokens,
        name="Tokens",
        mode="lines",
        yaxis="y2",
        line={"color": TOKENS_COLOR, "width": 1},
        hovertemplate=f"%{{x:.1f}} {unit}<br>%{{y:,}} tokens<extra></extra>",
    )
    layout = _base_layout(
        title,
        xaxis={"title": {"text": f"Elapsed ({unit})"}, "rangemode": "tozero"},
        yaxis={
            "title": {"text": "Cost (USD)"},
            "tickprefix": "$",
            "tickformat": money,
            "rangemode": "tozero",
        },
        yaxis2={
            "title": {"text": "Tokens"},
            "overlaying": "y",
            "side": "right",
            "showgrid": False,
            "tickformat": ".3~s",  # 17.9k, not 17.8596k
            "rangemode": "tozero",
        },
        hovermode="x unified",
    )
    if budget is not None:
        shape, label = _budget_line(budget)
        layout["shapes"] = [shape]
        layout["annotations"] = [label]
    return go.Figure(data=[cost_trace, token_trace], layout=layout)


def status_breakdown(counts: Mapping[str, int]) -> go.Figure:
    """One horizontal stacked bar of rows per status (known statuses first, in a fixed order and colour)."""
    known = [s for s in STATUS_ORDER if counts.get(s, 0) > 0]
    others = sorted(s for s, n in counts.items() if s not in STATUS_ORDER and n > 0)
    total = sum(counts[s] for s in known + others)
    if total == 0:
        return _empty("No rows yet")
    traces = []
    for status in known + others:
        n = counts[status]
        traces.append(
            go.Bar(
                x=[n],
                y=["Rows"],
                orientation="h",
                name=_safe(status.capitalize()),
                marker={"color": STATUS_COLORS.get(status, "#7f7f7f")},
                text=[f"{n:,}"],
                textposition="inside",
                hovertemplate=f"%{{fullData.name}}: %{{x:,}} ({n / total:.0%})<extra></extra>",
            )
        )
    layout = _base_layout(
        None,
        barmode="stack",
        height=160,
        xaxis={"title": {"text": f"{total:,} rows"}, "range": [0, total]},
        yaxis={"visible": False},
    )
    return go.Figure(data=traces, layout=layout)


def _run_day(started_at: object) -> dt.date | None:
    """The UTC calendar day of an ISO timestamp (naive ones are taken as UTC); None when unreadable."""
    if not isinstance(started_at, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(started_at.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    return moment.date()


def _cost(value: object) -> float:
    try:
        cost = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0
    return cost if cost == cost else 0.0  # NaN counts as nothing spent


def history_costs(runs: Sequence[Mapping[str, Any]]) -> go.Figure:
    """Past runs' cost per UTC day, stacked by prompt name; runs with an unreadable date are left out."""
    totals: dict[str, dict[dt.date, float]] = defaultdict(lambda: defaultdict(float))
    run_counts: dict[str, dict[dt.date, int]] = defaultdict(lambda: defaultdict(int))
    day_totals: dict[dt.date, float] = defaultdict(float)
    for run in runs:
        day = _run_day(run.get("started_at"))
        if day is None:
            continue
        name = str(run.get("prompt_name") or "(unnamed prompt)")
        totals[name][day] += _cost(run.get("cost_usd"))
        run_counts[name][day] += 1
        day_totals[day] += _cost(run.get("cost_usd"))
    if not totals:
        return _empty("No past runs yet")
    money = _money_format(max(day_totals.values()))
    traces = []
    for name in sorted(totals):
        days = sorted(totals[name])
        traces.append(
            go.Bar(
                x=days,
                y=[totals[name][d] for d in days],
                customdata=[run_counts[name][d] for d in days],
                name=_safe(name),
                hovertemplate=(
                    f"%{{x|%Y-%m-%d}}<br>%{{fullData.name}}<br>$%{{y:{money}}}"
                    " over %{customdata} run(s)<extra></extra>"
                ),
            )
        )
    layout = _base_layout(
        None,
        barmode="stack",
        xaxis={"title": {"text": "Day (UTC)"}, "type": "date", "tickformat": "%b %d"},
        yaxis={
            "title": {"text": "Cost (USD)"},
            "tickprefix": "$",
            "tickformat": money,
            "rangemode": "tozero",
        },
    )
    return go.Figure(data=traces, layout=layout)
