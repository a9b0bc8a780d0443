"""Data safety: with MariaDB or Redis down the POST gets a 503 with the typed answers kept,
never a "thank you"; after the restart the same POST is stored.

Each test runs its own private server (not the session-wide one) so it can stop it.
"""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from survey_app import create_app
from tests.app.helpers import csrf_token
from tests.app.survey_helpers import STORED, VALID, answers_of, respondent, stored_response
from tests.conftest import MIGRATIONS, make_settings
from tests.services import MariaDBServer, RedisServer

TYPED = dict(VALID, monthly_spend="R$ 2.345,67", household_size="7")


def _assert_form_kept(response, notice: str) -> None:
    page = response.get_data(as_text=True)
    assert response.status_code == 503
    assert "Location" not in response.headers
    assert notice in page
    assert "Obrigado" not in page and "Thank you" not in page
    assert 'value="R$ 2.345,67"' in page and 'value="7"' in page
    for code in ("3001_5000", "centro", "price", "proximity", "pix", "debit_card"):
        assert re.search(rf'value="{code}"\s+checked', page), code
    assert csrf_token(response)  # the form can be sent again as it is


def _logged_in(settings):
    """A new app on `settings`, a logged-in client, its user id and the form's CSRF token."""
    app = create_app(settings, TESTING=True)
    client = app.test_client()
    user_id = respondent(app, client)
    return client, user_id, csrf_token(client.get("/survey"))


@pytest.fixture
def private_mariadb(tmp_path):
    from survey_ctl.migrate import migrate

    server = MariaDBServer(tmp_path / "mariadb").start()
    name = server.create_database()
    with server.connect(name) as conn:
        migrate(conn, MIGRATIONS)
    yield server, name
    server.stop()


def test_mariadb_down_keeps_the_answers_and_acknowledges_nothing(private_mariadb, redis_server,
                                                                 redis_db):
    server, name = private_mariadb
    client, user_id, token = _logged_in(make_settings(server, name, redis_server, redis_db))

    server.stop()
    response = client.post("/survey", data=dict(TYPED, csrf_token=token))
    _assert_form_kept(response, "Suas respostas NÃO foram salvas.")
    response = client.post("/survey?lang=en", data=dict(TYPED, csrf_token=token))
    _assert_form_kept(response, "Your answers were NOT saved.")
    assert client.get("/survey/thanks").status_code == 503  # no thanks while unknown

    server.start()
    with server.connect(name) as conn:
        assert stored_response(conn, user_id) is None  # nothing was stored
        response = client.post("/survey", data=dict(TYPED, csrf_token=token))
        assert response.status_code == 303
        assert answers_of(stored_response(conn, user_id)) == dict(
            STORED, monthly_spend=Decimal("2345.67"), household_size=7)
    assert client.get("/survey/thanks").status_code == 200


def test_redis_down_keeps_the_answers_and_acknowledges_nothing(mariadb, database, tmp_path):
    redis = RedisServer(tmp_path / "redis").start()
    try:
        client, user_id, token = _logged_in(make_settings(mariadb, database, redis, 0))

        redis.stop()
        response = client.post("/survey?lang=en", data=dict(TYPED, csrf_token=token))
        _assert_form_kept(response, "Your answers were NOT saved.")
        with mariadb.connect(database) as conn:
            assert stored_response(conn, user_id) is None

        redis.start()  # an empty Redis: the session is gone, the person logs in again
        respondent_again = client.post("/survey", data=dict(TYPED, csrf_token=token))
        assert respondent_again.status_code == 401  # the form back, answers kept, "log in"
        assert 'value="R$ 2.345,67"' in respondent_again.get_data(as_text=True)
        with mariadb.connect(database) as conn:
            assert stored_response(conn, user_id) is None
    finally:
        redis.stop()
