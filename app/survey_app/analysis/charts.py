"""Geometry of the report's SVG charts (pure data; templates/analysis/_charts.html draws it).

Coordinates are in SVG user units of a fixed viewBox; the SVG scales with CSS. Colours
come from classes (`series-N`) in app.css, so the charts need no inline style (CSP).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

WIDTH = 640
LABEL_WIDTH = 210
BAR_WIDTH = 330
ROW_HEIGHT = 26
BAR_HEIGHT = 16
TOP = 8
SERIES = 7  # series-0 .. series-6 in app.css


@dataclass(frozen=True)
class Bar:
    """One horizontal bar with its confidence whisker."""

    label: Any
    value_text: str
    y: float
    width: float
    low: float
    high: float

    @property
    def middle(self) -> float:
        """Vertical centre of the bar."""
        return self.y + BAR_HEIGHT / 2


@dataclass(frozen=True)
class BarChart:
    """Bars of shares in [0, 1] with whiskers."""

    bars: tuple[Bar, ...]
    height: float
    x0: float = LABEL_WIDTH
    value_x: float = LABEL_WIDTH + BAR_WIDTH + 8
    width: float = WIDTH


def bar_chart(rows: Sequence[tuple[Any, float, float, float, str]]) -> BarChart:
    """Bars from (label, share, low, high, value text) rows, shares in [0, 1].

    The axis ends at the largest interval end rounded up to a tenth, so small shares
    stay readable; the value text says the share itself.
    """
    top = min(1.0, math.ceil(max((high for *_, high, _t in rows), default=1.0) * 10) / 10 or 0.1)
    unit = BAR_WIDTH / top
    bars = tuple(
        Bar(label, text, TOP + i * ROW_HEIGHT, share * unit,
            LABEL_WIDTH + low * unit, LABEL_WIDTH + high * unit)
        for i, (label, share, low, high, text) in enumerate(rows))
    return BarChart(bars, TOP * 2 + len(rows) * ROW_HEIGHT)


@dataclass(frozen=True)
class Segment:
    """A piece of a stacked bar."""

    x: float
    width: float
    series: int
    title: str


@dataclass(frozen=True)
class StackedRow:
    """One row of a 100 % stacked bar chart."""

    label: Any
    y: float
    segments: tuple[Segment, ...]


@dataclass(frozen=True)
class StackedChart:
    """Rows of stacked shares, with a legend below."""

    rows: tuple[StackedRow, ...]
    legend: tuple[tuple[float, int, Any], ...]  # (y, series, label)
    height: float
    x0: float = LABEL_WIDTH
    width: float = WIDTH


def stacked_chart(row_labels: Sequence[Any], column_labels: Sequence[Any],
                  shares: Sequence[Sequence[float]], titles: Sequence[Sequence[str]]
                  ) -> StackedChart:
    """Stacked bars: shares[i][j] of row i in column j (each row adds up to 1 or 0)."""
    rows = []
    for i, label in enumerate(row_labels):
        x, segments = float(LABEL_WIDTH), []
        for j, share in enumerate(shares[i]):
            width = share * BAR_WIDTH
            if width > 0:
                segments.append(Segment(x, width, j % SERIES, titles[i][j]))
            x += width
        rows.append(StackedRow(label, TOP + i * ROW_HEIGHT, tuple(segments)))
    legend_top = TOP + len(row_labels) * ROW_HEIGHT + 10
    legend = tuple((legend_top + j * 20, j % SERIES, label)
                   for j, label in enumerate(column_labels))
    return StackedChart(tuple(rows), legend, legend_top + len(column_labels) * 20 + 4)


@dataclass(frozen=True)
class RevenueChart:
    """The revenue interval, its estimate and the break-even line on one money axis."""

    low: float
    high: float
    point: float
    break_even: float | None
    ticks: tuple[tuple[float, str], ...]
    height: float = 110
    width: float = WIDTH
    x0: float = 40
    x1: float = WIDTH - 40


def revenue_chart(low: float, estimate: float, high: float, break_even: float | None,
                  money: Any) -> RevenueChart:
    """Scale the revenue interval and break-even onto [x0, x1]; `money` formats tick labels."""
    top = max(high, break_even or 0.0, 1.0) * 1.15
    x0, x1 = 40.0, WIDTH - 40.0

    def x(value: float) -> float:
        return x0 + (x1 - x0) * max(value, 0.0) / top

    ticks = tuple((x(top * k / 4), money(top * k / 4)) for k in range(5))
    return RevenueChart(x(low), x(high), x(estimate),
                        x(break_even) if break_even is not None else None, ticks)
