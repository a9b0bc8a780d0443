"""Server-side sessions shared by app instances; idle and absolute timeouts; cookies."""

from __future__ import annotations

import pytest

from tests.app.helpers import create_user, login, session_id


def test_a_session_from_one_instance_works_on_another(make_app, redis_server, redis_db):
    backend_a, backend_b = make_app(served_by="app-a"), make_app(served_by="app-b")
    create_user(backend_a, "shared@example.com")
    client_a = backend_a.test_client()
    assert login(client_a, "shared@example.com").status_code == 302
    sid = session_id(client_a)

    client_b = backend_b.test_client()
    client_b.set_cookie("survey_session", sid)
    response_b = client_b.get("/password")
    response_a = client_a.get("/password")
    assert response_a.status_code == response_b.status_code == 200
    assert response_a.headers["X-Served-By"] == "app-a"
    assert response_b.headers["X-Served-By"] == "app-b"
    assert 'action="/logout"' in response_b.get_data(as_text=True)
    assert redis_server.client(redis_db).exists(f"survey:session:{sid}")


def test_logout_on_one_instance_ends_the_session_on_the_other(make_app):
    from tests.app.helpers import logout

    backend_a, backend_b = make_app(served_by="app-a"), make_app(served_by="app-b")
    create_user(backend_a, "both@example.com")
    client_a = backend_a.test_client()
    login(client_a, "both@example.com")
    sid = session_id(client_a)
    logout(client_a)
    client_b = backend_b.test_client()
    client_b.set_cookie("survey_session", sid)
    assert client_b.get("/password").status_code == 302


def test_cookie_flags(make_app):
    app = make_app(secure_cookies=True)
    create_user(app, "cookie@example.com")
    client = app.test_client()
    response = login(client, "cookie@example.com", base_url="https://localhost")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie


def test_cookie_is_not_secure_without_tls_setting(app, client):
    cookie = client.get("/login").headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


def test_redis_expiry_is_the_idle_timeout(app, client, redis_server, redis_db):
    create_user(app, "ttl@example.com")
    login(client, "ttl@example.com")
    ttl = redis_server.client(redis_db).ttl(f"survey:session:{session_id(client)}")
    assert 30 * 60 - 5 <= ttl <= 30 * 60


@pytest.fixture
def clock(monkeypatch):
    """A settable clock for the session timestamps."""
    import time

    from survey_app.auth import users

    now = [time.time()]
    monkeypatch.setattr(users, "clock", lambda: now[0])
    return now


def test_idle_timeout(app, client, clock):
    create_user(app, "idle@example.com")
    client.get("/login?lang=en")  # the language cookie
    login(client, "idle@example.com")
    clock[0] += 29 * 60
    assert client.get("/password").status_code == 200  # activity refreshes it
    clock[0] += 29 * 60
    assert client.get("/password").status_code == 200
    clock[0] += 31 * 60
    response = client.get("/password")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    page = client.get("/login")
    assert "Your session expired" in page.get_data(as_text=True)


def test_absolute_timeout_despite_activity(app, client, clock):
    create_user(app, "abs@example.com")
    login(client, "abs@example.com")
    started = clock[0]
    while client.get("/password").status_code == 200:
        assert clock[0] - started <= 12 * 3600, "still logged in after 12 hours"
        clock[0] += 20 * 60  # active every 20 minutes: never idle
    assert clock[0] - started > 12 * 3600 - 20 * 60


def test_absolute_timeout_is_configurable(make_app, clock):
    app = make_app(session_absolute_hours=1)
    create_user(app, "short@example.com")
    client = app.test_client()
    login(client, "short@example.com")
    clock[0] += 25 * 60
    assert client.get("/password").status_code == 200
    clock[0] += 25 * 60
    assert client.get("/password").status_code == 200
    clock[0] += 25 * 60
    assert client.get("/password").status_code == 302


def test_deleted_account_ends_its_sessions(app, client):
    from survey_app import db

    user_id = create_user(app, "gone@example.com")
    login(client, "gone@example.com")
    with app.app_context(), db.transaction() as cur:
        cur.execute("DELETE FROM users WHERE id = %s", (user_id,))
    assert client.get("/password").status_code == 302
