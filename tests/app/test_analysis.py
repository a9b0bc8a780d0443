"""GET /analysis on real MariaDB: analysts only, figures equal the pure functions' results on
the same data, bad form values get a message, an empty survey gets a friendly page."""

from __future__ import annotations

import html
import random
import re
from decimal import Decimal

import pytest
from flask_babel import format_decimal

from benchmarks.analysis_bench import NEIGHBOURHOODS, generate_responses, insert_responses
from survey_app.analysis import queries
from survey_app.analysis.report import Params, build_report, small_cells
from survey_app.census import load_census
from survey_app.i18n import money
from survey_app.questionnaire import questionnaire
from tests.app.helpers import create_user, login
from tests.conftest import make_settings


def fill(mariadb, database, count: int, seed: int = 4, hoods=NEIGHBOURHOODS) -> None:
    """`count` generated responses (and their accounts) inserted with SQL."""
    with mariadb.connect(database) as conn:
        insert_responses(conn, list(generate_responses(random.Random(seed), count, hoods)),
                         batch=200, email_prefix="resp")


def as_analyst(app, client) -> None:
    create_user(app, "analyst@example.com", role="analyst")
    assert login(client, "analyst@example.com").status_code == 302


def figure(page: str, element_id: str) -> str:
    """Text of the element with `element_id` (tags dropped, entities decoded)."""
    match = re.search(rf'id="{element_id}"[^>]*>(.*?)</(?:dd|p|td)>', page, re.S)
    assert match, f"no #{element_id} in the page"
    return html.unescape(re.sub(r"<[^>]+>", "", match.group(1))).strip()


def report_from_db(census, params: Params):
    """The report built by the pure functions from the database (inside a request)."""
    q = questionnaire(census)
    groups = queries.cell_aggregates(q)
    return build_report(groups, queries.multi_choice_counts(q),
                        queries.small_cell_values(small_cells(groups)), census, q, params)


def expected_report(app, params: Params):
    """The report of the pure functions on the app's database, and its figures as shown."""
    settings = app.extensions["survey_settings"]
    with app.test_request_context("/analysis"):
        report = report_from_db(load_census(settings.census_file), params)
        return report, {
            "n": format_decimal(report.n), "neff": format_decimal(round(report.n_eff, 1)),
            "revenue": money(report.viability.revenue.estimate),
            "low": money(report.viability.revenue.low),
            "high": money(report.viability.revenue.high),
            "demand": money(report.demand.interval.estimate),
        }


@pytest.fixture
def analyst(app, client):
    as_analyst(app, client)
    return client


def test_respondents_get_403_and_visitors_go_to_login(app, client):
    assert client.get("/analysis").status_code == 302
    create_user(app, "r@example.com")
    assert login(client, "r@example.com").status_code == 302
    assert client.get("/analysis").status_code == 403


def test_empty_survey_gets_a_friendly_page(analyst):
    response = analyst.get("/analysis?lang=en")
    assert response.status_code == 200
    assert "No responses yet" in response.get_data(as_text=True)
    assert "Ainda não há respostas" in analyst.get("/analysis?lang=pt_BR").get_data(as_text=True)


@pytest.mark.parametrize("weighting", ["none", "neighbourhood"])
def test_page_shows_the_pure_functions_figures(app, analyst, mariadb, database, weighting):
    fill(mariadb, database, 400)
    params = Params(weighting=weighting, overstatement=0.3, break_even=Decimal("1000000"))
    report, expected = expected_report(app, params)
    response = analyst.get(f"/analysis?weighting={weighting}&overstatement=30"
                           "&break_even=1.000.000,00")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert figure(page, "fig-n") == expected["n"] == "400"
    assert figure(page, "fig-neff") == expected["neff"]
    revenue = figure(page, "fig-revenue")
    for key in ("revenue", "low", "high"):
        assert expected[key] in revenue
    assert expected["demand"] in figure(page, "fig-demand")
    assert report.verdict is not None
    verdict_word = {"viable": "Viável", "uncertain": "Incerto", "not_viable": "Inviável"}
    assert figure(page, "verdict").startswith(verdict_word[report.verdict])
    if weighting == "none":
        assert report.n_eff == pytest.approx(400)
    else:
        assert report.n_eff < 400
    # a share from the tables: first answer of shopping_frequency, weighted column
    share = next(d for d in report.distributions
                 if d.question.key == "shopping_frequency").shares[0]
    assert str(share.count) in page


def test_verdicts_follow_the_break_even(app, analyst, mariadb, database):
    fill(mariadb, database, 150, seed=9)
    report, _ = expected_report(app, Params())
    revenue = report.viability.revenue
    cases = {revenue.low * 0.5: "Viable", revenue.estimate: "Uncertain",
             revenue.high * 2: "Not viable"}
    for break_even, word in cases.items():
        page = analyst.get(f"/analysis?lang=en&break_even={break_even:.2f}").get_data(as_text=True)
        assert figure(page, "verdict").startswith(word), (break_even, figure(page, "verdict"))


@pytest.mark.parametrize("query, message", [
    ("weighting=bogus", "Choose one of the weighting options"),
    ("weighting=neighbourhood_income", "Choose one of the weighting options"),
    ("overstatement=abc", "overstatement factor must be a percentage"),
    ("overstatement=96", "overstatement factor must be a percentage"),
    ("overstatement=-1", "overstatement factor must be a percentage"),
    ("overstatement=NaN", "overstatement factor must be a percentage"),
    ("overstatement=Infinity", "overstatement factor must be a percentage"),
    ("break_even=-5", "break-even revenue in reais"),
    ("break_even=lots", "break-even revenue in reais"),
    ("break_even=" + "9" * 500, "break-even revenue in reais"),
    ("break_even=1e9", "break-even revenue in reais"),
    ("break_even=%3Cscript%3E", "break-even revenue in reais"),
])
def test_bad_form_values_get_a_message_not_a_500(app, analyst, mariadb, database, query,
                                                    message):
    fill(mariadb, database, 60, seed=2)
    response = analyst.get(f"/analysis?lang=en&{query}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert message in page
    assert "<script>" not in page
    assert 'id="fig-revenue"' in page  # the report is still shown, with defaults


def test_page_is_csp_safe_accessible_and_printable(analyst, mariadb, database):
    fill(mariadb, database, 80, seed=5)
    page = analyst.get("/analysis?break_even=500000").get_data(as_text=True)
    assert " style=" not in page and "<script" not in page and "<style" not in page
    charts = re.findall(r"<svg\b.*?</svg>", page, re.S)
    assert len(charts) >= 10
    for svg in charts:
        assert 'role="img"' in svg and "<title" in svg and "<desc" in svg
    assert page.count("<table") >= len(charts) - 1  # every chart has its data table
    assert "R$" in page


def test_income_weighting_with_an_income_census(app_settings, mariadb, database, redis_server,
                                                redis_db, tmp_path):
    """With households per neighbourhood × income bracket the third weighting is offered;
    census cells without respondents are collapsed and the page says so."""
    from survey_app import create_app

    main = tmp_path / "census.csv"
    main.write_text("neighbourhood,label,households\ncentro,Centro,4000\nvila_nova,Vila Nova,"
                    "3000\n", encoding="utf-8")
    (tmp_path / "census_income.csv").write_text(
        "neighbourhood,income_bracket,households\n"
        + "".join(f"{hood},{bracket},{300 + 10 * i}\n"
                  for hood in ("centro", "vila_nova")
                  for i, bracket in enumerate(["ate_1500", "1501_3000", "3001_5000",
                                               "5001_8000", "8001_12000", "12001_20000",
                                               "acima_20000"])), encoding="utf-8")
    settings = make_settings(mariadb, database, redis_server, redis_db, census_file=main)
    app = create_app(settings, TESTING=True)
    client = app.test_client()
    as_analyst(app, client)
    fill(mariadb, database, 40, seed=3, hoods=NEIGHBOURHOODS[:2])
    page = client.get("/analysis?lang=en&weighting=neighbourhood_income").get_data(as_text=True)
    assert 'value="neighbourhood_income" selected' in page
    assert "Choose one of the weighting" not in page
    assert "No respondent in census cell" in page  # 40 answers cannot fill 14 cells
    with app.test_request_context("/analysis?lang=en"):
        report = report_from_db(load_census(main, tmp_path / "census_income.csv"),
                                Params(weighting="neighbourhood_income"))
        assert figure(page, "fig-revenue").startswith(money(report.viability.revenue.estimate))
    assert report.weighting.total == pytest.approx(sum(300 + 10 * i for i in range(7)) * 2)


@pytest.mark.parametrize("lang", ["pt_BR", "en"])
def test_fast_percent_matches_babel(app, lang):
    from flask_babel import format_percent

    from survey_app.analysis.views import percent

    with app.test_request_context(f"/analysis?lang={lang}"):
        for value in (0, 0.00049, 0.00051, 0.1234, 0.5, 0.99951, 1):  # (Babel rounds ties to even)
            assert percent(value) == format_percent(value, "#,##0.0%"), value


def test_respondents_outside_the_census_are_reported(mariadb, database, redis_server, redis_db,
                                                     tmp_path):
    from survey_app import create_app

    main = tmp_path / "census.csv"
    main.write_text("neighbourhood,label,households\ncentro,Centro,4000\n", encoding="utf-8")
    app = create_app(make_settings(mariadb, database, redis_server, redis_db, census_file=main),
                     TESTING=True)
    client = app.test_client()
    as_analyst(app, client)
    fill(mariadb, database, 30, seed=6, hoods=NEIGHBOURHOODS[:2])
    page = client.get("/analysis?lang=en").get_data(as_text=True)
    assert "missing from the census (vila_nova) got the average weight" in page
    assert figure(page, "fig-n") == "30"


def test_bootstrap_size_comes_from_the_config(app, analyst, mariadb, database):
    fill(mariadb, database, 50, seed=7)
    app.config["ANALYSIS_BOOTSTRAP_REPLICATES"] = 200
    page = analyst.get("/analysis?lang=en").get_data(as_text=True)
    assert "Interval: 200 bootstrap replicates" in page


def test_cached_aggregates_follow_every_save(app, analyst, mariadb, database, monkeypatch):
    fill(mariadb, database, 40, seed=11)
    first = analyst.get("/analysis?lang=en").get_data(as_text=True)
    assert figure(first, "fig-n") == "40"
    # same data: the page is served from the cache, statements 1-3 do not run
    with monkeypatch.context() as patch:
        patch.setattr(queries, "cell_aggregates", lambda q: pytest.fail("not cached"))
        again = analyst.get("/analysis?lang=en&overstatement=10").get_data(as_text=True)
        assert figure(again, "fig-n") == "40"
    # an edit (as the survey's upsert does it) changes the figures at once
    with mariadb.connect(database) as conn, conn.cursor() as cur:
        cur.execute("UPDATE responses SET monthly_spend = monthly_spend + 1000, "
                    "purchase_intent = 5, share_moved = 100, "
                    "updated_at = CURRENT_TIMESTAMP(6) ORDER BY id LIMIT 1")
        conn.commit()
    edited = analyst.get("/analysis?lang=en").get_data(as_text=True)
    assert figure(edited, "fig-revenue") != figure(first, "fig-revenue")
    fill(mariadb, database, 5, seed=12)
    assert figure(analyst.get("/analysis?lang=en").get_data(as_text=True), "fig-n") == "45"


@pytest.mark.parametrize("count", [1, 2])
def test_a_tiny_survey_still_renders(analyst, mariadb, database, count):
    fill(mariadb, database, count, seed=13)
    response = analyst.get("/analysis?lang=en&weighting=none&break_even=1000")
    assert response.status_code == 200
    assert figure(response.get_data(as_text=True), "fig-n") == str(count)
