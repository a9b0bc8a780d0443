"""An analyst reads the report: charts drawn, weighting and break-even changed, exports."""

from __future__ import annotations

import csv
import io

import pytest
from openpyxl import load_workbook

from tests.browser.conftest import DESKTOP, screenshot
from tests.browser.pages import axe_violations, log_in, start

pytestmark = pytest.mark.browser

SAMPLE = 150


def _download(page, path: str):
    """Download `path` with Playwright's download API: the page's link when there is one."""
    link = page.locator(f'a[href$="{path}"]')
    with page.expect_download() as info:
        if link.count():
            link.first.click()
        else:
            page.evaluate("url => { window.location.assign(url); }", path)
    download = info.value
    assert download.failure() is None
    return download


def _charts_drawn(page) -> list[str]:
    """Ids of the report's SVG charts that have shapes with a real size on screen."""
    return page.locator("svg.chart").evaluate_all("""charts => charts.filter(svg => {
        const box = svg.getBoundingClientRect();
        const shapes = [...svg.querySelectorAll('rect, line')].filter(
            s => s.getBBox().width > 0 || s.getBBox().height > 0);
        return box.width > 100 && box.height > 20 && shapes.length > 0;
    }).map(svg => svg.id)""")


@pytest.mark.parametrize("lang", ["pt_BR", "en"])
def test_analyst_reads_the_report_changes_it_and_downloads(live_app, new_page, lang):
    live_app.cli("load-sample-responses", str(SAMPLE), "--seed", "3")
    created = live_app.cli("create-analyst", "analista@example.com", "--generate-password")
    password = created.stdout.splitlines()[1].rsplit(": ", 1)[1]

    page = new_page(viewport=DESKTOP)
    words = start(page, live_app.url, lang, "/login")
    log_in(page, live_app.url, words, "analista@example.com", password)
    page.get_by_role("link", name=words["analysis"]).first.click()
    page.wait_for_url("**/analysis")

    assert page.locator("#fig-n").inner_text() == str(SAMPLE)
    drawn = _charts_drawn(page)
    for chart in ("chart-revenue", "chart-income_by_spend", "chart-neighbourhood_by_intent",
                  "chart-income_bracket"):
        assert chart in drawn
    assert len(drawn) == page.locator("svg.chart").count()  # every chart has content
    weighted_n_eff = page.locator("#fig-neff").inner_text()
    assert page.locator("#verdict.notice").count() == 1  # no break-even yet: no verdict

    page.locator("#weighting").select_option("none")
    page.locator("#break_even").fill("20.000.000,00" if lang == "pt_BR" else "20,000,000.00")
    with page.expect_navigation():
        page.locator("form.analysis-form button[type=submit]").click()
    assert "weighting=none" in page.url and "break_even=" in page.url
    assert page.locator("#weighting").input_value() == "none"
    assert page.locator("#fig-neff").inner_text() == str(SAMPLE)  # unweighted: n_eff = n
    assert page.locator("#fig-neff").inner_text() != weighted_n_eff
    verdict = page.locator("#verdict")
    assert "verdict" in verdict.get_attribute("class")
    assert ("20.000.000" if lang == "pt_BR" else "20,000,000") in verdict.inner_text()
    assert page.locator("#chart-revenue .chart-breakeven").count() == 1  # the line is drawn
    assert axe_violations(page) == []
    screenshot(page, f"analysis-report-full-{lang}", full_page=True)
    screenshot(page.locator("section[aria-labelledby=viability-h]"),
               f"analysis-viability-{lang}", doc=lang == "pt_BR")
    screenshot(page.locator("section[aria-labelledby=cross-h] figure").first,
               f"analysis-crosstab-{lang}", doc=lang == "pt_BR")

    csv_file = _download(page, "/export/responses.csv")
    assert csv_file.suggested_filename == "responses.csv"
    rows = list(csv.DictReader(io.StringIO(csv_file.path().read_text(encoding="utf-8-sig"))))
    assert len(rows) == SAMPLE
    assert {"income_bracket", "household_size", "monthly_spend"} <= set(rows[0])

    xlsx_file = _download(page, "/export/responses.xlsx")
    assert xlsx_file.suggested_filename == "responses.xlsx"
    book = load_workbook(io.BytesIO(xlsx_file.path().read_bytes()))
    assert len(book.worksheets) >= 2  # the responses and the codebook
    responses = list(book.worksheets[0].iter_rows(values_only=True))
    assert len(responses) == SAMPLE + 1 and "monthly_spend" in responses[0]
