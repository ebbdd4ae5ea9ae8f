"""Chart builders: traces carry the input numbers, budget line, downsampling, empty input, escaped labels."""

from __future__ import annotations

import datetime as dt
import json

import plotly.graph_objects as go
import pytest

from lib import charts

HOSTILE = "<img src=x onerror=alert(1)>"
ESCAPED = "&lt;img src=x onerror=alert(1)&gt;"


def _points(n: int, step: float = 1.0) -> list[tuple[float, float, int]]:
    return [(i * step, i * 0.002, i * 150) for i in range(n)]


def _traces(figure: go.Figure) -> dict[str, go.Scatter]:
    return {trace.name: trace for trace in figure.data}


def _no_raw_tags(figure: go.Figure) -> None:
    """Nothing plotly would render as a tag anywhere in the figure."""
    assert "<img" not in figure.to_json()


# --- cost_over_time ----------------------------------------------------------------------------------


def test_cost_series_equals_input_and_tokens_on_secondary_axis():
    points = [(0.0, 0.0, 0), (0.5, 0.0012, 310), (1.5, 0.0031, 790), (2.0, 0.0049, 1200)]
    traces = _traces(charts.cost_over_time(points))
    assert set(traces) == {"Cost", "Tokens"}
    cost, tokens = traces["Cost"], traces["Tokens"]
    assert list(cost.x) == [p[0] for p in points] and list(cost.y) == [p[1] for p in points]
    assert list(tokens.x) == [p[0] for p in points] and list(tokens.y) == [p[2] for p in points]
    assert cost.yaxis in (None, "y") and tokens.yaxis == "y2"


def test_axes_cost_in_dollars_tokens_overlaid_on_the_right():
    layout = charts.cost_over_time(_points(10)).layout
    assert layout.yaxis.tickprefix == "$"
    assert (layout.yaxis2.overlaying, layout.yaxis2.side) == ("y", "right")
    assert layout.xaxis.title.text == "Elapsed (s)"


def test_long_run_reads_in_minutes():
    points = [(0.0, 0.0, 0), (300.0, 1.0, 10), (1200.0, 2.5, 30)]
    figure = charts.cost_over_time(points)
    assert figure.layout.xaxis.title.text == "Elapsed (min)"
    assert list(figure.data[0].x) == [0.0, 5.0, 20.0]
    assert list(figure.data[0].y) == [0.0, 1.0, 2.5]


@pytest.mark.parametrize("budget", [None, 0.01, 5.0])
def test_budget_line_present_only_when_given(budget):
    figure = charts.cost_over_time(_points(5), budget=budget)
    shapes = list(figure.layout.shapes)
    if budget is None:
        assert shapes == [] and not figure.layout.annotations
        return
    (line,) = shapes
    assert (line.y0, line.y1, line.yref, line.line.dash) == (budget, budget, "y", "dash")
    assert (line.xref, line.x0, line.x1) == ("paper", 0, 1)
    assert any("Budget" in a.text for a in figure.layout.annotations)


@pytest.mark.parametrize("budget", [None, 3.0])
def test_empty_input_is_a_message_not_an_error(budget):
    figure = charts.cost_over_time([], budget=budget)
    assert figure.data == ()
    assert figure.layout.annotations[0].text == "No requests yet"
    assert len(figure.layout.shapes) == (0 if budget is None else 1)


@pytest.mark.parametrize(("n", "cap"), [(2, 2), (499, 500), (500, 500), (501, 500), (20_000, 500), (7, 3)])
def test_downsample_keeps_first_last_and_cap(n, cap):
    items = list(range(n))
    sample = charts.downsample(items, cap)
    assert len(sample) == min(n, cap)
    assert sample[0] == 0 and sample[-1] == n - 1
    assert sample == sorted(set(sample))  # in order, no repeats


def test_downsample_rejects_silly_cap():
    with pytest.raises(ValueError):
        charts.downsample([1, 2, 3], cap=1)


def test_cost_chart_is_downsampled_keeping_last_point_exactly():
    points = _points(20_000, step=0.01)  # 200 s: stays in seconds
    points[-1] = (199.99, 12.345678, 2_999_999)
    cost, tokens = charts.cost_over_time(points).data
    assert len(cost.x) <= charts.MAX_POINTS
    assert (cost.x[0], cost.y[0], tokens.y[0]) == (0.0, 0.0, 0)
    assert (cost.x[-1], cost.y[-1], tokens.y[-1]) == (199.99, 12.345678, 2_999_999)


def test_title_is_escaped():
    figure = charts.cost_over_time(_points(3), title=f"Run of {HOSTILE}")
    assert figure.layout.title.text == f"Run of {ESCAPED}"
    _no_raw_tags(figure)


# --- status_breakdown --------------------------------------------------------------------------------


def test_status_breakdown_stacks_known_statuses_in_order():
    counts = {"pending": 4, "failed": 2, "succeeded": 10, "skipped": 0, "flagged": 1}
    figure = charts.status_breakdown(counts)
    assert figure.layout.barmode == "stack"
    assert [(t.name, t.x[0], t.orientation) for t in figure.data] == [
        ("Succeeded", 10, "h"),
        ("Flagged", 1, "h"),
        ("Failed", 2, "h"),
        ("Pending", 4, "h"),
    ]  # zero counts are left out of the legend


def test_status_breakdown_unknown_status_escaped_and_last():
    figure = charts.status_breakdown({"succeeded": 1, HOSTILE: 2})
    assert [t.name for t in figure.data] == ["Succeeded", ESCAPED.capitalize()]
    _no_raw_tags(figure)


@pytest.mark.parametrize("counts", [{}, {"pending": 0, "failed": 0}])
def test_status_breakdown_empty(counts):
    figure = charts.status_breakdown(counts)
    assert figure.data == () and figure.layout.annotations[0].text == "No rows yet"


# --- history_costs -----------------------------------------------------------------------------------


def test_history_costs_per_day_stacked_by_prompt():
    runs = [
        {"started_at": "2026-11-23T09:00:00+00:00", "cost_usd": 0.40, "prompt_name": "icebreaker"},
        {"started_at": "2026-11-23T15:00:00Z", "cost_usd": 0.10, "prompt_name": "icebreaker"},
        {"started_at": "2026-11-24T10:00:00", "cost_usd": 1.25, "prompt_name": "icebreaker"},
        {"started_at": "2026-11-24T08:00:00Z", "cost_usd": 0.05, "prompt_name": "classify"},
    ]
    figure = charts.history_costs(runs)
    assert figure.layout.barmode == "stack"
    bars = {t.name: t for t in figure.data}
    assert set(bars) == {"icebreaker", "classify"}
    ice = bars["icebreaker"]
    assert list(ice.x) == [dt.date(2026, 11, 23), dt.date(2026, 11, 24)]
    assert list(ice.y) == pytest.approx([0.50, 1.25])
    assert list(ice.customdata) == [2, 1]  # runs per day, shown on hover
    assert list(bars["classify"].y) == [0.05]
    assert figure.layout.yaxis.tickprefix == "$"


def test_history_costs_day_is_utc():
    runs = [{"started_at": "2026-11-24T23:30:00-05:00", "cost_usd": 1, "prompt_name": "p"}]
    assert list(charts.history_costs(runs).data[0].x) == [dt.date(2026, 11, 25)]


def test_history_costs_escapes_prompt_names():
    figure = charts.history_costs(
        [{"started_at": "2026-11-24T10:00:00Z", "cost_usd": 0.5, "prompt_name": HOSTILE}]
    )
    assert figure.data[0].name == ESCAPED
    _no_raw_tags(figure)


def test_history_costs_tolerates_bad_rows():
    runs = [
        {"started_at": "not a date", "cost_usd": 9, "prompt_name": "p"},
        {"started_at": None, "cost_usd": 9, "prompt_name": "p"},
        {"started_at": "2026-11-24T10:00:00Z", "cost_usd": None, "prompt_name": None},
        {"started_at": "2026-11-24T11:00:00Z", "cost_usd": "0.25", "prompt_name": ""},
    ]
    (bar,) = charts.history_costs(runs).data
    assert bar.name == "(unnamed prompt)" and list(bar.y) == [0.25] and list(bar.customdata) == [2]


def test_history_costs_empty():
    figure = charts.history_costs([])
    assert figure.data == () and figure.layout.annotations[0].text == "No past runs yet"


@pytest.mark.parametrize(
    "figure",
    [
        charts.cost_over_time(_points(3), budget=1.0, title="t"),
        charts.status_breakdown({"succeeded": 1}),
        charts.history_costs([{"started_at": "2026-11-24", "cost_usd": 1, "prompt_name": "p"}]),
        charts.cost_over_time([]),
    ],
)
def test_figures_serialise(figure):
    assert json.loads(figure.to_json())["layout"]
