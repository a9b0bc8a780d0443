"""Health, identity, security headers, proxy trust and the 503 pages of an outage."""

from __future__ import annotations

import pytest

from tests.app.helpers import create_user, login, session_id
from tests.services import RedisServer, free_port


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def test_readyz_reports_each_dependency(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok",
                                   "checks": {"mariadb": "ok", "redis": "ok"}}


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/healthz", 200),
    ("GET", "/login", 200),
    ("GET", "/static/css/app.css", 200),
    ("GET", "/no-such-page", 404),
    ("GET", "/logout", 405),
    ("POST", "/login", 400),  # no CSRF token
])
def test_every_response_names_its_backend(client, method, path, status):
    response = client.open(path, method=method)
    assert response.status_code == status
    assert response.headers["X-Served-By"] == "test-backend"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_unexpected_error_is_a_500_page_with_identity(make_app):
    app = make_app(PROPAGATE_EXCEPTIONS=False)

    @app.get("/test-only/boom")
    def boom():
        raise RuntimeError("boom")

    response = app.test_client().get("/test-only/boom?lang=en")
    assert response.status_code == 500
    assert "Something went wrong on our side" in response.get_data(as_text=True)
    assert response.headers["X-Served-By"] == "test-backend"


def test_404_page_is_localised(client):
    response = client.get("/nowhere")
    assert "Página não encontrada" in response.get_data(as_text=True)


def test_logged_in_pages_are_not_cached(app, client):
    create_user(app, "cache@example.com")
    login(client, "cache@example.com")
    assert client.get("/password").headers["Cache-Control"] == "no-store"


def test_proxy_hops_decide_the_client_address(make_app):
    def seen_ip(app, headers):
        @app.get("/test-only/ip")
        def ip():
            from flask import request
            return f"{request.remote_addr} {request.scheme}"

        return app.test_client().get("/test-only/ip", headers=headers).get_data(as_text=True)

    headers = {"X-Forwarded-For": "203.0.113.9, 198.51.100.1", "X-Forwarded-Proto": "https"}
    assert seen_ip(make_app(trust_proxy_hops=1), headers) == "198.51.100.1 https"
    assert seen_ip(make_app(trust_proxy_hops=0), headers) == "127.0.0.1 http"


def unreachable_db(make_app, **extra):
    return make_app(db_port=free_port(), db_connect_timeout=1, **extra)


def test_mariadb_unreachable_readyz_and_503_page(make_app):
    app = unreachable_db(make_app)
    client = app.test_client()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"] == {"mariadb": "unreachable", "redis": "ok"}
    # The login form still shows (it needs no database); sending it gives the 503 page.
    page = client.get("/login")
    assert page.status_code == 200
    from tests.app.helpers import csrf_token

    response = client.post("/login", data={"csrf_token": csrf_token(page),
                                           "email": "a@example.com", "password": "whatever1"})
    assert response.status_code == 503
    body = response.get_data(as_text=True)
    assert "Serviço temporariamente indisponível" in body
    assert response.headers["X-Served-By"] == "test-backend"
    assert response.headers["Retry-After"] == "30"


def test_mariadb_down_for_a_logged_in_user_is_a_503_page(make_app):
    app = make_app()
    create_user(app, "down@example.com")
    client = app.test_client()
    login(client, "down@example.com")
    broken = unreachable_db(make_app)
    other = broken.test_client()
    other.set_cookie("survey_session", session_id(client))
    response = other.get("/password", query_string={"lang": "en"})
    assert response.status_code == 503
    assert "Service temporarily unavailable" in response.get_data(as_text=True)


@pytest.fixture
def private_redis(tmp_path):
    """A Redis of this test's own, to stop mid-test."""
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


def test_redis_stopped_gives_503_pages_not_500(mariadb, database, private_redis):
    from survey_app import create_app
    from tests.conftest import make_settings

    settings = make_settings(mariadb, database, private_redis, redis_db=0)
    app = create_app(settings, TESTING=True, PROPAGATE_EXCEPTIONS=False)
    create_user(app, "r@example.com")
    client = app.test_client()
    assert login(client, "r@example.com").status_code == 302
    assert client.get("/password").status_code == 200

    private_redis.stop()
    # The session cannot be loaded: a 503 page before any view runs.
    response = client.get("/password")
    assert response.status_code == 503
    assert "Serviço temporariamente indisponível" in response.get_data(as_text=True)
    assert response.headers["X-Served-By"] == "test-backend"
    response = client.post("/login", data={"email": "r@example.com", "password": "x" * 9})
    assert response.status_code == 503  # before CSRF or rate limits, which need Redis
    # A new visitor (no cookie) too: the session cannot be saved.
    response = app.test_client().get("/login", query_string={"lang": "en"})
    assert response.status_code == 503
    assert "Service temporarily unavailable" in response.get_data(as_text=True)
    # Liveness is unaffected, readiness names Redis, static files are served.
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json()["checks"] == {"mariadb": "ok", "redis": "unreachable"}
    assert client.get("/static/css/app.css").status_code == 200
