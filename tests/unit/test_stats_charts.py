"""Geometry of the report's SVG charts (survey_app.analysis.charts), by exact equality."""

from __future__ import annotations

import pytest

from survey_app.analysis import charts


def test_bar_chart_scales_to_the_largest_interval_end_rounded_up():
    chart = charts.bar_chart([("a", 0.2, 0.18, 0.22, "20%"), ("b", 0.0, 0.0, 0.0, "0%")])
    first, second = chart.bars
    assert (first.y, first.width, first.low, first.high) == (8, 220.0, 408.0, 452.0)
    assert (second.y, second.width, second.low, second.high) == (34, 0.0, 210.0, 210.0)
    assert chart.height == 16 + 2 * 26
    assert charts.bar_chart([("c", 0, 0, 0, "0%")]).bars[0].width == 0


def test_stacked_chart_rows_add_up_to_the_bar_width_and_skip_empty_segments():
    chart = charts.stacked_chart(["r1", "r2"], ["c1", "c2"], [[0.25, 0.75], [0.0, 1.0]],
                                 [["t11", "t12"], ["t21", "t22"]])
    first, second = chart.rows
    assert [(s.x, s.width, s.series) for s in first.segments] == [(210.0, 82.5, 0),
                                                                   (292.5, 247.5, 1)]
    assert [(s.x, s.width, s.title) for s in second.segments] == [(210.0, 330.0, "t22")]
    assert [label for _, _, label in chart.legend] == ["c1", "c2"]


def test_revenue_chart_puts_interval_and_break_even_on_one_axis():
    chart = charts.revenue_chart(50.0, 100.0, 150.0, 200.0, money=lambda v: f"R$ {v:.0f}")
    # axis top = max(150, 200) · 1.15 = 230 over x = 40 .. 600
    assert chart.low == pytest.approx(40 + 560 * 50 / 230)
    assert chart.high == pytest.approx(40 + 560 * 150 / 230)
    assert chart.break_even == pytest.approx(40 + 560 * 200 / 230)
    assert chart.ticks[0] == (40.0, "R$ 0") and chart.ticks[-1] == (600.0, "R$ 230")
    assert charts.revenue_chart(1, 2, 3, None, str).break_even is None
