"""GET /analysis: the analysts' report (weighting, overstatement and break-even from a GET form)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path

from babel.numbers import format_compact_currency, get_decimal_symbol
from flask import current_app, g, render_template, request
from flask_babel import format_currency, format_decimal, get_locale
from flask_babel import gettext as _

from survey_app.analysis import bp, charts, queries, viability
from survey_app.analysis.report import WEIGHTINGS, Params, Report, build_report, small_cells
from survey_app.auth import analyst_required
from survey_app.census import Census, CensusError, load_census
from survey_app.i18n import money
from survey_app.questionnaire import parse_money, questionnaire

MAX_OVERSTATEMENT_PERCENT = 95
MAX_BREAK_EVEN = Decimal("1000000000000")


def income_census_file(settings) -> Path | None:
    """The optional neighbourhood × income census: `Settings.census_income_file` when the
    settings have it, else `<census file stem>_income.csv` beside the census file."""
    configured = getattr(settings, "census_income_file", None)
    if configured:
        return Path(configured)
    sibling = Path(settings.census_file).with_name(Path(settings.census_file).stem + "_income.csv")
    return sibling if sibling.exists() else None


def load_report_census() -> tuple[Census, list[str]]:
    """The census with its income table when one is given and valid (else a message)."""
    settings = current_app.extensions["survey_settings"]
    income = income_census_file(settings)
    if income is not None:
        try:
            return load_census(settings.census_file, income), []
        except CensusError as exc:
            return load_census(settings.census_file), [
                _("The income census table cannot be used: %(error)s", error=str(exc))]
    return load_census(settings.census_file), []


def parse_params(args: Mapping[str, str], income_available: bool) -> tuple[Params, list[str]]:
    """Params from the query string; each bad value keeps its default and gets a message.

    The bootstrap's B comes from the app config `ANALYSIS_BOOTSTRAP_REPLICATES`
    (default 1000), not from the form.
    """
    errors: list[str] = []
    default = Params()
    weighting = args.get("weighting", default.weighting)
    allowed = WEIGHTINGS if income_available else WEIGHTINGS[:2]
    if weighting not in allowed:
        errors.append(_("Choose one of the weighting options shown."))
        weighting = default.weighting
    overstatement = default.overstatement
    raw = (args.get("overstatement") or "")[:20].strip().rstrip("%").replace(",", ".")
    if raw:
        try:
            value = Decimal(raw)
            if not value.is_finite() or not 0 <= value <= MAX_OVERSTATEMENT_PERCENT:
                raise InvalidOperation
            overstatement = float(value) / 100
        except InvalidOperation:
            errors.append(_("The overstatement factor must be a percentage from 0 to "
                            "%(max)d.", max=MAX_OVERSTATEMENT_PERCENT))
    break_even = None
    raw = (args.get("break_even") or "").strip()
    if raw:
        break_even = parse_money(raw[:40])
        if break_even is None or break_even > MAX_BREAK_EVEN:
            errors.append(_("Enter the break-even revenue in reais, for example 2.500.000,00."))
            break_even = None
    replicates = int(current_app.config.get("ANALYSIS_BOOTSTRAP_REPLICATES",
                                            default.replicates))
    return Params(weighting, overstatement, break_even, replicates), errors


def percent(value: float) -> str:
    """A share as a percentage with one decimal ("20,2%" in pt_BR).

    Same output as `format_percent(value, "#,##0.0%")` for shares in [0, 1] (no
    grouping below 1000 %; exact ties may round the other way), without Babel's
    per-call cost: the page shows ~600 of them.
    """
    return f"{value * 100:.1f}".replace(".", _decimal_symbol()) + "%"


def _decimal_symbol() -> str:
    if "analysis_decimal" not in g:
        g.analysis_decimal = get_decimal_symbol(get_locale())
    return g.analysis_decimal


def _share_chart(distribution, weighted: bool) -> charts.BarChart:
    rows = []
    for share in distribution.shares:
        interval = share.weighted if weighted else share.unweighted
        rows.append((distribution.labels[share.value], interval.estimate, interval.low,
                     interval.high, percent(interval.estimate)))
    return charts.bar_chart(rows)


def _stacked(tab, row_labels, column_labels) -> charts.StackedChart:
    shares = [[tab.row_shares[r, c] for c in tab.columns] for r in tab.rows]
    titles = [[f"{row_labels[i]} · {column_labels[j]}: {percent(shares[i][j])}"
               for j in range(len(tab.columns))] for i in range(len(tab.rows))]
    return charts.stacked_chart(row_labels, column_labels, shares, titles)


def whole_money(value: float) -> str:
    """R$ without cents ("R$ 2.500")."""
    return format_currency(value, "BRL", format="¤ #,##0", currency_digits=False)


def compact_money(value: float) -> str:
    """R$ in short form for axis ticks ("R$ 1,4 mi")."""
    return format_compact_currency(value, "BRL", locale=get_locale(), fraction_digits=1)


def spend_bracket_label(bracket: tuple[int, int | None]) -> str:
    """"R$ 300 to under R$ 600" / "R$ 2,500 or more" in the user's locale."""
    low, high = bracket
    if high is None:
        return _("%(low)s or more", low=whole_money(low))
    return _("%(low)s to under %(high)s", low=whole_money(low), high=whole_money(high))


def cell_label(report: Report, cell) -> str:
    """A weighting cell in words: "Centro" or "Centro / R$ 1.501 a R$ 3.000"."""
    if isinstance(cell, str):
        return str(report.labels["neighbourhood"].get(cell, cell))
    hood, bracket = cell
    return (f"{report.labels['neighbourhood'].get(hood, hood)} / "
            f"{report.labels['income_bracket'].get(bracket, bracket)}")


def chart_data(report: Report) -> dict:
    """SVG geometry for every chart of the report."""
    weighted = report.params.weighting != "none"
    labels = report.labels
    income_rows = [str(labels["income_bracket"][c]) for c in report.income_by_spend.rows]
    spend_columns = [spend_bracket_label(labels["spend_bracket"][j])
                     for j in report.income_by_spend.columns]
    hood_rows = [str(labels["neighbourhood"].get(c, c))
                 for c in report.neighbourhood_by_intent.rows]
    intent_columns = [f"{c} · {labels['purchase_intent'][c]}"
                      for c in report.neighbourhood_by_intent.columns]
    revenue = report.viability.revenue
    break_even = float(report.params.break_even) if report.params.break_even is not None else None
    return {
        "distributions": {d.question.key: _share_chart(d, weighted)
                          for d in report.distributions},
        "income_by_spend": _stacked(report.income_by_spend, income_rows, spend_columns),
        "income_rows": income_rows, "spend_columns": spend_columns,
        "neighbourhood_by_intent": _stacked(report.neighbourhood_by_intent, hood_rows,
                                            intent_columns),
        "hood_rows": hood_rows, "intent_columns": intent_columns,
        "revenue": charts.revenue_chart(revenue.low, revenue.estimate, revenue.high, break_even,
                                        compact_money),
    }


@bp.get("/analysis")
@analyst_required
def report():
    """The report, or a friendly page while there is no response."""
    census, notes = load_report_census()
    income_available = census.income_households is not None
    params, errors = parse_params(request.args, income_available)
    q = questionnaire(census)
    settings = current_app.extensions["survey_settings"]
    data = queries.report_aggregates(
        q, (settings.db_host, settings.db_port, settings.db_name), small_cells)
    context = dict(params=params, errors=errors, notes=notes, weightings=WEIGHTINGS,
                   income_available=income_available, money=money, percent=percent,
                   number=format_decimal, decimal2=lambda v: format_decimal(v, "#,##0.00"),
                   overstatement_percent=format_decimal(
                       round(params.overstatement * 100, 2)),
                   max_overstatement=MAX_OVERSTATEMENT_PERCENT)
    if not data.groups:
        return render_template("analysis/empty.html", **context)
    result = build_report(data.groups, data.multi, data.small, census, q, params)
    assert result is not None
    calibration = "; ".join(format_decimal(p) for p in viability.INTENT_PROBABILITY.values())
    return render_template("analysis/report.html", report=result, charts=chart_data(result),
                           calibration=calibration,
                           cell_label=lambda cell: cell_label(result, cell), **context)
