"""Nothing typed is lost when the session ends while the questionnaire is open.

The idle expiry is forced for real: the session's key is deleted from Redis (what its
TTL does after 30 idle minutes), or the clock is moved past the server-side check.
"""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from tests.app.helpers import csrf_token, login, session_id
from tests.app.survey_helpers import STORED, VALID, answers_of, respondent, stored_response

TYPED = dict(VALID, household_size="5", monthly_spend="987,65")


@pytest.fixture
def conn(mariadb, database):
    """An admin connection to the test database."""
    with mariadb.connect(database) as connection:
        yield connection


@pytest.fixture
def clock(monkeypatch):
    """A settable clock for the session timestamps."""
    from survey_app.auth import users

    now = [time.time()]
    monkeypatch.setattr(users, "clock", lambda: now[0])
    return now


def _expire_in_redis(client, redis_server, redis_db) -> None:
    assert redis_server.client(redis_db).delete(f"survey:session:{session_id(client)}") == 1


def _expired_post(app, client, redis_server, redis_db):
    """Open the form, let the session expire in Redis, then send it."""
    token = csrf_token(client.get("/survey?lang=en"))
    _expire_in_redis(client, redis_server, redis_db)
    return client.post("/survey", data=dict(TYPED, csrf_token=token))


def test_an_expired_session_gives_the_typed_answers_back(app, client, conn, redis_server,
                                                         redis_db):
    user_id = respondent(app, client)
    response = _expired_post(app, client, redis_server, redis_db)
    page = response.get_data(as_text=True)
    assert response.status_code == 401
    assert "Your answers were NOT saved: your session expired." in page
    assert 'value="987,65"' in page and 'value="5"' in page
    assert 'value="pix" checked' in page
    assert 'href="/login" target="_blank"' in page
    assert "This form has expired" not in page  # not the bare CSRF page
    assert stored_response(conn, user_id) is None


def test_after_logging_in_again_the_page_gets_the_new_token_and_sends(
        app, client, conn, redis_server, redis_db):
    user_id = respondent(app, client)
    page = _expired_post(app, client, redis_server, redis_db)
    assert login(client, "ana@example.com").status_code == 302  # in another tab
    # what keepalive.js does when the person comes back to the form's tab
    state = client.get("/session/keepalive").get_json()
    assert state["logged_in"] is True
    assert csrf_token(page) != state["csrf_token"]
    response = client.post("/survey", data=dict(TYPED, csrf_token=state["csrf_token"]))
    assert response.status_code == 303
    assert answers_of(stored_response(conn, user_id))["monthly_spend"] == Decimal("987.65")


def test_without_javascript_the_second_send_after_logging_in_works(
        app, client, conn, redis_server, redis_db):
    """The re-shown form's token belongs to the anonymous session that logging in
    replaced (a new session id, its data cleared), so the first send after logging in
    comes back once more, still with every answer and now this session's token."""
    user_id = respondent(app, client)
    expired = _expired_post(app, client, redis_server, redis_db)
    assert login(client, "ana@example.com").status_code == 302
    again = client.post("/survey?lang=en", data=dict(TYPED, csrf_token=csrf_token(expired)))
    page = again.get_data(as_text=True)
    assert again.status_code == 400
    assert "The form had expired." in page and 'value="987,65"' in page
    assert stored_response(conn, user_id) is None
    response = client.post("/survey", data=dict(TYPED, csrf_token=csrf_token(again)))
    assert response.status_code == 303
    assert answers_of(stored_response(conn, user_id)) == dict(
        STORED, household_size=5, monthly_spend=Decimal("987.65"))


def test_a_session_ended_by_the_server_side_idle_check_keeps_the_answers(
        app, client, conn, clock):
    user_id = respondent(app, client)
    token = csrf_token(client.get("/survey?lang=en"))
    clock[0] += 31 * 60  # the Redis key is still there; the server check ends the session
    response = client.post("/survey", data=dict(TYPED, csrf_token=token))
    assert response.status_code == 401
    assert 'value="987,65"' in response.get_data(as_text=True)
    assert stored_response(conn, user_id) is None


def test_keepalive_refreshes_the_session_while_the_form_is_open(
        app, client, redis_server, redis_db, clock):
    respondent(app, client)
    token = csrf_token(client.get("/survey"))
    key = f"survey:session:{session_id(client)}"
    for _ in range(4):  # 100 minutes of typing, a ping every 25
        clock[0] += 25 * 60
        redis_server.client(redis_db).expire(key, 60)  # as if the TTL had nearly run out
        state = client.get("/session/keepalive").get_json()
        assert state == {"logged_in": True, "csrf_token": state["csrf_token"]}
        assert redis_server.client(redis_db).ttl(key) > 29 * 60
    assert client.post("/survey", data=dict(VALID, csrf_token=token)).status_code == 303


def test_keepalive_answers_no_store_and_says_when_logged_out(app, client):
    response = client.get("/session/keepalive")
    assert response.headers["Cache-Control"] == "no-store"
    assert response.get_json()["logged_in"] is False


def test_the_form_loads_the_keepalive_script(app, client):
    respondent(app, client)
    page = client.get("/survey").get_data(as_text=True)
    assert '<script src="/static/js/keepalive.js" defer></script>' in page
    assert 'data-keepalive-url="/session/keepalive" data-keepalive-seconds="300"' in page
    assert client.get("/static/js/keepalive.js").status_code == 200


def test_other_forms_still_get_the_csrf_page(app, client):
    respondent(app, client)
    response = client.post("/password?lang=en", data={"current_password": "x"})
    assert response.status_code == 400
    assert "This form has expired" in response.get_data(as_text=True)
