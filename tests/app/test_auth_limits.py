"""Rate limits on login, sign-up and password change: per IP and per account, in Redis."""

from __future__ import annotations

from tests.app.helpers import DEFAULT_PASSWORD, change_password, create_user, login, signup


def forwarded(ip: str) -> dict:
    """Request options that make the request come from `ip` through the trusted proxy."""
    return {"headers": {"X-Forwarded-For": ip}}


def test_login_per_account_limit(make_app):
    app = make_app(limit_login_account="3/minute", limit_login_ip="100/minute",
                   trust_proxy_hops=1)
    create_user(app, "victim@example.com")
    client = app.test_client()
    for n in range(3):
        response = login(client, "victim@example.com", "wrong guess", **forwarded(f"10.0.0.{n}"))
        assert response.status_code == 422
    # Another address, another case of the same email: still the same account.
    blocked = login(client, "VICTIM@example.com", DEFAULT_PASSWORD,
                    query_string={"lang": "en"}, **forwarded("10.0.0.99"))
    assert blocked.status_code == 429
    assert "Too many attempts" in blocked.get_data(as_text=True)
    assert blocked.headers["X-Served-By"] == "test-backend"
    # Other accounts are not affected.
    create_user(app, "other@example.com")
    assert login(client, "other@example.com", **forwarded("10.0.0.99")).status_code == 302


def test_login_per_ip_limit(make_app):
    app = make_app(limit_login_ip="4/minute", limit_login_account="100/minute",
                   trust_proxy_hops=1)
    client = app.test_client()
    for n in range(4):
        assert login(client, f"user{n}@example.com", "wrong guess",
                     **forwarded("192.0.2.7")).status_code == 422
    assert login(client, "user9@example.com", "wrong guess",
                 **forwarded("192.0.2.7")).status_code == 429
    assert login(client, "user9@example.com", "wrong guess",
                 **forwarded("192.0.2.8")).status_code == 422


def test_limit_page_is_in_the_default_language(make_app):
    app = make_app(limit_login_ip="1/minute")
    client = app.test_client()
    login(client, "a@example.com", "wrong guess")
    response = login(client, "a@example.com", "wrong guess")
    assert response.status_code == 429
    assert "Tentativas demais" in response.get_data(as_text=True)


def test_get_of_the_form_is_not_counted(make_app):
    app = make_app(limit_login_ip="2/minute")
    client = app.test_client()
    for _ in range(5):
        assert client.get("/login").status_code == 200


def test_limits_are_shared_by_two_instances(make_app):
    limits = {"limit_login_account": "4/minute", "limit_login_ip": "100/minute"}
    backend_a = make_app(served_by="app-a", **limits)
    backend_b = make_app(served_by="app-b", **limits)
    create_user(backend_a, "target@example.com")
    client_a, client_b = backend_a.test_client(), backend_b.test_client()
    for client in (client_a, client_b, client_a, client_b):
        assert login(client, "target@example.com", "wrong guess").status_code == 422
    for client, name in ((client_a, "app-a"), (client_b, "app-b")):
        response = login(client, "target@example.com")
        assert response.status_code == 429 and response.headers["X-Served-By"] == name


def test_signup_limits(make_app):
    app = make_app(limit_signup_ip="3/minute", limit_signup_account="2/minute")
    client = app.test_client()
    assert signup(client, "s@example.com", "short").status_code == 422
    assert signup(client, "s@example.com", "short").status_code == 422
    assert signup(client, "s@example.com").status_code == 429  # per account
    assert signup(client, "t@example.com").status_code == 302
    assert signup(app.test_client(), "u@example.com").status_code == 429  # per IP


def test_password_change_limits(make_app):
    app = make_app(limit_password_account="2/minute", limit_password_ip="100/minute",
                   trust_proxy_hops=1)
    create_user(app, "chg@example.com")
    client = app.test_client()
    login(client, "chg@example.com")
    for n in range(2):
        assert change_password(client, "bad guess!", "new passphrase here",
                               **forwarded(f"198.51.100.{n}")).status_code == 422
    assert change_password(client, DEFAULT_PASSWORD, "new passphrase here",
                           **forwarded("198.51.100.9")).status_code == 429


def test_counters_live_in_redis(make_app, redis_server, redis_db):
    app = make_app(limit_login_ip="50/minute")
    login(app.test_client(), "x@example.com", "wrong guess")
    keys = redis_server.client(redis_db).keys("*survey:limits*")
    assert keys, "no rate-limit counter in Redis"


def test_malformed_limit_stops_the_app_at_start(make_app):
    import pytest

    from survey_app.settings import SettingsError

    with pytest.raises(SettingsError, match="SURVEY_LIMIT_LOGIN_IP"):
        make_app(limit_login_ip="lots")


def test_limits_come_from_the_environment():
    from survey_app.settings import Settings

    settings = Settings.from_env({"SURVEY_SECRET_KEY": "s" * 16,
                                  "SURVEY_LIMIT_LOGIN_ACCOUNT": "2/hour"})
    assert settings.limit_login_account == "2/hour"
    assert settings.limit_login_ip == "10/minute"
