"""The questionnaire through the app on real MariaDB and Redis, CSRF on."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

import pytest
from markupsafe import escape

from tests.app.helpers import create_user, csrf_token, login, logout
from tests.app.survey_helpers import (
    STORED,
    VALID,
    answer,
    answers_of,
    count_responses,
    respondent,
    stored_response,
)


@pytest.fixture
def conn(mariadb, database):
    """An admin connection to the test database, to read what the app stored."""
    with mariadb.connect(database) as connection:
        yield connection


def _page(response) -> str:
    return response.get_data(as_text=True)


def test_landing_page_invites_to_sign_up_or_answer(app, client):
    page = _page(client.get("/?lang=en"))
    assert "Create an account" in page and 'href="/signup"' in page
    respondent(app, client)
    page = _page(client.get("/?lang=en"))
    assert 'href="/survey"' in page and "Go to the questionnaire" in page


def test_questionnaire_needs_a_login(client):
    response = client.get("/survey")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert client.get("/survey/thanks").status_code == 302


def test_form_is_generated_from_the_definition(app, client):
    respondent(app, client)
    page = _page(client.get("/survey?lang=en"))
    assert page.count("<fieldset") == 12  # every question with choices
    assert '<fieldset id="q-neighbourhood">' in page  # 6 neighbourhoods: radio buttons
    assert 'for="q-household_size"' in page and 'for="q-monthly_spend"' in page
    assert 'aria-describedby="q-monthly_spend-help"' in page
    assert "<legend>What matters most to you in a supermarket?</legend>" in page
    assert 'type="checkbox" name="priorities"' in page.replace("\n", " ").replace("  ", "")
    for code in ("ate_1500", "acima_20000", "centro", "boa_vista", "meal_voucher"):
        assert f'value="{code}"' in page


def test_a_long_neighbourhood_list_is_a_select(mariadb, database, redis_server, redis_db,
                                               tmp_path):
    from survey_app import create_app
    from tests.conftest import make_settings

    census = tmp_path / "census.csv"
    census.write_text("neighbourhood,label,households\n"
                      + "".join(f"b{i},Bairro {i},{100 + i}\n" for i in range(30)))
    big = create_app(make_settings(mariadb, database, redis_server, redis_db,
                                   census_file=census), TESTING=True)
    client = big.test_client()
    respondent(big, client)
    page = _page(client.get("/survey?lang=en"))
    assert re.search(r'<label class="q-label" for="q-neighbourhood">.*?<select\s+name='
                     r'"neighbourhood" id="q-neighbourhood"', page, re.S)
    assert '<option value="b29">Bairro 29</option>' in page
    assert answer(client, dict(VALID, neighbourhood="b29")).status_code == 303


def test_answers_are_stored_and_acknowledged_after_commit(app, client, conn):
    user_id = respondent(app, client)
    response = answer(client, VALID)
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/survey/thanks")
    row = stored_response(conn, user_id)
    assert answers_of(row) == STORED
    thanks = client.get("/survey/thanks?lang=en")
    assert thanks.status_code == 200 and "Your answers are saved." in _page(thanks)


def test_editing_keeps_one_row_and_replaces_the_choices(app, client, conn):
    user_id = respondent(app, client)
    assert answer(client, VALID).status_code == 303
    first = stored_response(conn, user_id)
    page = _page(client.get("/survey?lang=en"))
    assert 'value="1234,56"' in page and "You have already answered" in page
    assert re.search(r'value="pix"\s+checked', page)
    changed = dict(VALID, priorities=["quality"], household_size="5", monthly_spend="R$ 800")
    assert answer(client, changed).status_code == 303
    second = stored_response(conn, user_id)
    assert count_responses(conn) == 1 and second["id"] == first["id"]
    assert second["priorities"] == ("quality",) and second["household_size"] == 5
    assert str(second["monthly_spend"]) == "800.00"
    assert second["created_at"] == first["created_at"]
    assert second["updated_at"] >= first["updated_at"]


INVALID = [
    ("income_bracket", None, "Please answer this question."),
    ("income_bracket", "ate_999", "Choose one of the options shown."),
    ("household_size", "0", "Enter a value from 1 to 20."),
    ("household_size", "21", "Enter a value from 1 to 20."),
    ("household_size", "2.5", "Enter a whole number."),
    ("household_size", "three", "Enter a whole number."),
    ("monthly_spend", "60.000,00", "Enter a value from 0 to 50,000."),
    ("monthly_spend", "lots", "Enter an amount in reais, for example 1.250,00."),
    ("neighbourhood", "atlantis", "Choose one of the options shown."),
    ("priorities", None, "Pick at least 1 option."),
    ("priorities", ["price", "variety", "service", "parking"], "Pick at most 3 options."),
    ("payment_methods", ["pix", "bitcoin"], "Choose only among the options shown."),
    ("purchase_intent", "9", "Choose one of the options shown."),
    ("share_moved", ["25", "50"], "Give only one answer."),
    ("buys_online", "x" * 5000, "This answer is too long."),
]


@pytest.mark.parametrize(("key", "value", "message"), INVALID)
def test_invalid_answers_are_refused_with_a_message_and_kept(app, client, conn, key, value,
                                                             message):
    respondent(app, client)
    data = dict(VALID, monthly_spend="777,70")
    if value is None:
        del data[key]
    else:
        data[key] = value
    response = answer(client, data, query_string={"lang": "en"})
    assert response.status_code == 400
    page = _page(response)
    assert f'<p class="q-error" id="q-{key}-error">{html.escape(message)}</p>' in page
    assert re.search(rf'aria-describedby="[^"]*q-{key}-error"', page)
    assert 'aria-invalid="true"' in page and 'class="error-summary"' in page
    if key != "monthly_spend":
        assert 'value="777,70"' in page  # the other typed answers are kept
    elif isinstance(value, str):
        assert f'value="{value}"' in page  # and the wrong one too
    assert re.search(r'value="car"\s+checked', page)
    assert count_responses(conn) == 0


def test_messages_are_in_portuguese_by_default(app, client):
    respondent(app, client)
    page = _page(answer(client, dict(VALID, household_size="99")))
    assert "Informe um valor de 1 a 20." in page
    assert "Quantas pessoas moram na sua casa?" in page


@pytest.mark.parametrize("payload", [
    "'; DROP TABLE responses; --",
    "1 OR 1=1",
    '"><script>alert(1)</script>',
    "<img src=x onerror=alert(1)>",
])
def test_sql_and_html_payloads_are_refused_and_shown_escaped(app, client, conn, payload):
    respondent(app, client)
    data = dict(VALID, household_size=payload, monthly_spend=payload, travel_mode=payload,
                priorities=["price", payload])
    response = answer(client, data)
    assert response.status_code == 400
    page = _page(response)
    assert "<script>alert" not in page and "<img src=x" not in page
    assert f'value="{escape(payload)}"' in page  # kept, escaped, in a text field
    assert count_responses(conn) == 0
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM users")
        assert cur.fetchone()[0] == 1


def test_an_oversized_request_is_refused_cleanly(app, client, conn):
    respondent(app, client)
    token = csrf_token(client.get("/survey"))
    response = client.post("/survey", data=dict(VALID, csrf_token=token,
                                                 filler="x" * 100_000))
    assert response.status_code == 413
    assert count_responses(conn) == 0


def test_a_post_without_csrf_token_is_refused(app, client, conn):
    respondent(app, client)
    assert client.post("/survey", data=VALID).status_code == 400
    assert count_responses(conn) == 0


def test_the_user_id_comes_from_the_session_only(app, client, conn):
    ana = respondent(app, client)
    bruno = create_user(app, "bruno@example.com")
    data = dict(VALID, user_id=str(bruno), id=str(bruno))
    assert answer(client, data, query_string={"user_id": bruno}).status_code == 303
    assert stored_response(conn, ana) is not None
    assert stored_response(conn, bruno) is None


def test_a_respondent_never_sees_another_ones_answers(app, client, conn):
    respondent(app, client, "ana@example.com")
    assert answer(client, dict(VALID, monthly_spend="4.321,09")).status_code == 303
    logout(client)
    respondent(app, client, "bruno@example.com")
    page = _page(client.get("/survey"))
    assert "4321,09" not in page and "checked" not in page
    assert client.get("/survey/thanks").status_code == 302  # no answer of his yet
    assert answer(client, dict(VALID, monthly_spend="10")).status_code == 303
    logout(client)
    login(client, "ana@example.com")
    assert 'value="4321,09"' in _page(client.get("/survey"))


def test_the_survey_closes(mariadb, database, redis_server, redis_db, conn):
    from survey_app import create_app
    from tests.conftest import make_settings

    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    closed_app = create_app(make_settings(mariadb, database, redis_server, redis_db,
                                          survey_closes_at=past),
                            TESTING=True)
    client = closed_app.test_client()
    user_id = respondent(closed_app, client)
    page = _page(client.get("/survey?lang=en"))
    assert "The survey is closed" in page and "disabled" in page
    assert 'type="submit"' not in page.split('class="survey-form"')[1]
    token = csrf_token(client.get("/survey"))
    response = client.post("/survey", data=dict(VALID, csrf_token=token))
    assert response.status_code == 403
    assert stored_response(conn, user_id) is None


def test_an_open_survey_shows_its_closing_time(mariadb, database, redis_server, redis_db):
    from survey_app import create_app
    from tests.conftest import make_settings

    future = "2099-12-31T23:59:00-03:00"
    open_app = create_app(make_settings(mariadb, database, redis_server, redis_db,
                                        survey_closes_at=future),
                          TESTING=True)
    client = open_app.test_client()
    respondent(open_app, client)
    page = _page(client.get("/survey?lang=en"))
    assert "The survey closes on" in page and "2099" in page
    assert answer(client, VALID).status_code == 303


def test_a_malformed_closing_time_stops_the_app(mariadb, database, redis_server, redis_db):
    from survey_app import create_app
    from survey_app.settings import SettingsError
    from tests.conftest import make_settings

    with pytest.raises(SettingsError, match="SURVEY_CLOSES_AT"):
        create_app(make_settings(mariadb, database, redis_server, redis_db,
                                 survey_closes_at="next friday"))


def test_a_connection_lost_before_commit_is_not_acknowledged(app, client, conn, mariadb,
                                                             monkeypatch):
    import pymysql

    user_id = respondent(app, client)
    original_commit = pymysql.connections.Connection.commit

    def commit_after_losing_the_connection(self):
        with mariadb.root_connection() as admin, admin.cursor() as cur:
            cur.execute("KILL %s", (self.thread_id(),))
        return original_commit(self)

    token = csrf_token(client.get("/survey"))
    monkeypatch.setattr(pymysql.connections.Connection, "commit",
                        commit_after_losing_the_connection)
    response = client.post("/survey?lang=en", data=dict(VALID, csrf_token=token))
    monkeypatch.undo()
    assert response.status_code == 503
    page = _page(response)
    assert "Your answers were NOT saved." in page and "Thank you" not in page
    assert 'value="1.234,56"' in page and re.search(r'value="pix"\s+checked', page)
    assert stored_response(conn, user_id) is None
    assert answer(client, VALID).status_code == 303  # a retry works
    assert stored_response(conn, user_id) is not None
