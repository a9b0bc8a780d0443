"""Accounts: sign-up, login, logout, password change, roles, CSRF, the analyst command."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from flask import Blueprint

from tests.app.helpers import (
    DEFAULT_PASSWORD,
    change_password,
    create_user,
    csrf_token,
    login,
    logout,
    post_form,
    session_id,
    signup,
)


def user_row(app, email):
    from survey_app import db

    with app.app_context():
        rows = db.query("SELECT id, email, password_hash, role, locale FROM users "
                        "WHERE email = %s",
                        (email,))
    return rows[0] if rows else None


def text(response) -> str:
    return response.get_data(as_text=True)


def test_signup_creates_a_logged_in_respondent(app, client, real_hasher):
    response = signup(client, "  Ana.Silva@Example.COM ")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    row = user_row(app, "Ana.Silva@example.com")
    assert row["email"] == "Ana.Silva@example.com"  # domain lower-cased, local part kept
    assert row["role"] == "respondent" and row["locale"] == "pt_BR"
    assert row["password_hash"].startswith("$argon2id$v=19$m=65536,t=3,p=4$")  # RFC 9106
    assert DEFAULT_PASSWORD not in row["password_hash"]
    page = client.get("/password")
    assert page.status_code == 200 and 'action="/logout"' in text(page)


@pytest.mark.parametrize(("password", "confirm", "message"), [
    ("short7c", None, "Use at least 8 characters."),
    ("x" * 1025, None, "Use at most 1024 characters."),
    ("password1", None, "This password is too common."),
    ("Flamengo123", None, "This password is too common."),
    ("new.person@example.com", None, "Do not use your email address"),
    ("a sturdy passphrase 42", "something else", "The two passwords differ."),
])
def test_signup_refuses_weak_passwords(app, client, password, confirm, message):
    response = signup(client, "new.person@example.com", password, confirm,
                      query_string={"lang": "en"})
    assert response.status_code == 422
    assert message in text(response)
    assert user_row(app, "new.person@example.com") is None


def test_long_password_is_not_truncated(app, client):
    password = "é" * 1024  # 1024 characters, 2048 bytes: accepted whole
    assert signup(client, "long@example.com", password).status_code == 302
    logout(client)
    assert login(client, "long@example.com", password).status_code == 302
    logout(client)
    assert login(client, "long@example.com", password[:-1]).status_code == 422


@pytest.mark.parametrize(("email", "message"), [
    ("", "This field is required."),
    ("not-an-email", "Enter a valid email address"),
    ("a@" + "b" * 250 + ".com", "Use at most 254 characters."),
])
def test_signup_refuses_bad_emails(client, email, message):
    response = signup(client, email, query_string={"lang": "en"})
    assert response.status_code == 422 and message in text(response)


def test_duplicate_email_is_refused_whatever_the_case(app, client):
    create_user(app, "dup@example.com")
    response = signup(client, "DUP@EXAMPLE.COM", query_string={"lang": "en"})
    assert response.status_code == 422
    assert "already exists" in text(response)


def test_login_failures_look_the_same(app, client, monkeypatch):
    from survey_app.auth import views

    create_user(app, "known@example.com")
    calls = []
    real_verify = views.verify_password
    monkeypatch.setattr(views, "verify_password",
                        lambda h, p: calls.append(h) or real_verify(h, p))
    wrong = login(client, "known@example.com", "not the password", query_string={"lang": "en"})
    unknown = login(client, "nobody@example.com", "not the password",
                    query_string={"lang": "en"})
    assert wrong.status_code == unknown.status_code == 422
    for response in (wrong, unknown):
        assert "Wrong email or password." in text(response)
    # An unknown email still costs one argon2 verification (against a dummy hash).
    assert len(calls) == 2 and calls[1].startswith("$argon2id$")


def test_login_is_case_insensitive_and_follows_a_safe_next(app, client):
    create_user(app, "Case@example.com")
    response = login(client, "case@EXAMPLE.com", next="/password")
    assert response.status_code == 302 and response.headers["Location"] == "/password"


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil"])
def test_login_ignores_foreign_next(app, client, target):
    create_user(app, "nx@example.com")
    response = login(client, "nx@example.com", next=target)
    assert response.headers["Location"] == "/"


def test_login_rehashes_old_parameters(app, client, real_hasher):
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
    from survey_app import db

    with app.app_context(), db.transaction() as cur:
        cur.execute("INSERT INTO users (email, password_hash) VALUES (%s, %s)",
                    ("old@example.com", weak.hash(DEFAULT_PASSWORD)))
    assert login(client, "old@example.com").status_code == 302
    new_hash = user_row(app, "old@example.com")["password_hash"]
    assert "m=65536" in new_hash and not PasswordHasher().check_needs_rehash(new_hash)


def test_session_id_changes_at_login_and_old_session_is_gone(app, client, redis_server,
                                                             redis_db):
    create_user(app, "rot@example.com")
    client.get("/login")
    before = session_id(client)
    redis = redis_server.client(redis_db)
    assert redis.exists(f"survey:session:{before}")
    assert login(client, "rot@example.com").status_code == 302
    after = session_id(client)
    assert after and after != before
    assert not redis.exists(f"survey:session:{before}")
    assert redis.exists(f"survey:session:{after}")


def test_a_planted_session_id_is_not_adopted(app, client):
    client.set_cookie("survey_session", "attacker-chosen-id")
    client.get("/login")
    assert session_id(client) != "attacker-chosen-id"


def test_logout_is_post_only_and_deletes_the_server_session(app, client, redis_server,
                                                            redis_db):
    create_user(app, "out@example.com")
    login(client, "out@example.com")
    sid = session_id(client)
    redis = redis_server.client(redis_db)
    assert redis.exists(f"survey:session:{sid}")
    assert client.get("/logout").status_code == 405
    response = logout(client)
    assert response.status_code == 302
    assert not redis.exists(f"survey:session:{sid}")
    assert session_id(client) != sid
    # The old cookie replayed is worthless.
    client.set_cookie("survey_session", sid)
    assert client.get("/password").status_code == 302


def test_change_password_requires_the_current_one(app, client):
    create_user(app, "pw@example.com")
    login(client, "pw@example.com")
    new = "another fine passphrase"
    response = change_password(client, "wrong current", new, query_string={"lang": "en"})
    assert response.status_code == 422
    assert "The current password is not correct." in text(response)
    response = change_password(client, DEFAULT_PASSWORD, "12345678", query_string={"lang": "en"})
    assert response.status_code == 422 and "too common" in text(response)
    sid = session_id(client)
    assert change_password(client, DEFAULT_PASSWORD, new).status_code == 302
    assert session_id(client) != sid  # a new session id after the change
    assert client.get("/password").status_code == 200  # still logged in
    logout(client)
    assert login(client, "pw@example.com").status_code == 422
    assert login(client, "pw@example.com", new).status_code == 302


def test_change_password_ends_the_other_sessions(app):
    create_user(app, "two@example.com")
    first, second = app.test_client(), app.test_client()
    login(first, "two@example.com")
    login(second, "two@example.com")
    assert change_password(first, DEFAULT_PASSWORD, "brand new passphrase").status_code == 302
    assert first.get("/password").status_code == 200
    response = second.get("/password")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_change_password_needs_login(client):
    response = client.get("/password")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/password"


@pytest.mark.parametrize("token", [None, "forged-token"])
def test_csrf_rejection_is_a_400_page(app, client, token):
    create_user(app, "csrf@example.com")
    client.get("/login")
    data = {"email": "csrf@example.com", "password": DEFAULT_PASSWORD}
    if token:
        data["csrf_token"] = token
    response = client.post("/login", data=data, query_string={"lang": "en"})
    assert response.status_code == 400
    assert "This form has expired" in text(response)
    assert session_id(client) is None or client.get("/password").status_code == 302


def test_csrf_token_of_another_session_is_refused(app):
    create_user(app, "cross@example.com")
    victim, attacker = app.test_client(), app.test_client()
    login(victim, "cross@example.com")
    token = csrf_token(attacker.get("/login"))
    response = victim.post("/logout", data={"csrf_token": token})
    assert response.status_code == 400
    assert victim.get("/password").status_code == 200  # still logged in


@pytest.fixture
def analyst_only_app(app):
    """The app plus a test-only analyst page."""
    from survey_app.auth import analyst_required

    extra = Blueprint("test_only", __name__)

    @extra.get("/test-only/analyst")
    @analyst_required
    def page():
        return "analyst page"

    app.register_blueprint(extra)
    return app


def test_analyst_pages_are_forbidden_to_respondents(analyst_only_app):
    app = analyst_only_app
    create_user(app, "resp@example.com")
    create_user(app, "anal@example.com", role="analyst")
    anonymous = app.test_client()
    response = anonymous.get("/test-only/analyst")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    respondent = app.test_client()
    login(respondent, "resp@example.com")
    response = respondent.get("/test-only/analyst", query_string={"lang": "en"})
    assert response.status_code == 403 and "Access denied" in text(response)
    analyst = app.test_client()
    login(analyst, "anal@example.com")
    assert analyst.get("/test-only/analyst").get_data(as_text=True) == "analyst page"


def test_current_user_value(app, client):
    from flask import g

    from survey_app.auth import User, current_user

    user_id = create_user(app, "who@example.com", role="analyst")
    login(client, "who@example.com")
    with app.test_request_context("/"):
        pass
    with client:
        client.get("/password")
        from flask import g

        from survey_app.auth import current_user
        assert current_user() == User(id=user_id, email="who@example.com", role="analyst")
        assert g.user.is_analyst


def test_create_analyst_prompts_twice(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["create-analyst", "Boss@Example.com"],
                           input="a sturdy passphrase 42\na sturdy passphrase 42\n")
    assert result.exit_code == 0, result.output
    assert "a sturdy passphrase" not in result.output
    assert user_row(app, "Boss@example.com")["role"] == "analyst"
    client = app.test_client()
    assert login(client, "boss@example.com").status_code == 302


def test_create_analyst_reads_stdin_and_refuses_weak_or_duplicate(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["create-analyst", "ops@example.com", "--password-stdin"],
                           input="password123\n")
    assert result.exit_code == 1 and "too common" in result.output
    assert user_row(app, "ops@example.com") is None
    result = runner.invoke(args=["create-analyst", "ops@example.com", "--password-stdin"],
                           input="a sturdy passphrase 42\n")
    assert result.exit_code == 0 and user_row(app, "ops@example.com")["role"] == "analyst"
    result = runner.invoke(args=["create-analyst", "ops@example.com", "--password-stdin"],
                           input="a sturdy passphrase 42\n")
    assert result.exit_code == 1 and "already exists" in result.output


def test_promote_and_demote(app):
    create_user(app, "p@example.com")
    runner = app.test_cli_runner()
    assert runner.invoke(args=["promote", "p@example.com"]).exit_code == 0
    assert user_row(app, "p@example.com")["role"] == "analyst"
    assert runner.invoke(args=["demote", "p@example.com"]).exit_code == 0
    assert user_row(app, "p@example.com")["role"] == "respondent"
    result = runner.invoke(args=["promote", "nobody@example.com"])
    assert result.exit_code == 1 and "no account" in result.output


def test_no_default_accounts(app):
    from survey_app import db

    with app.app_context():
        assert db.query("SELECT COUNT(*) AS n FROM users")[0]["n"] == 0


def test_state_changes_need_post(app, client):
    assert client.get("/logout").status_code == 405
    form = post_form(client, "/login", {"email": "x@example.com", "password": "whatever1"})
    assert form.status_code == 422


def test_nav_shows_the_analysis_link_to_analysts_only(app):
    create_user(app, "nav-a@example.com", role="analyst")
    create_user(app, "nav-r@example.com")
    analyst, respondent = app.test_client(), app.test_client()
    login(analyst, "nav-a@example.com")
    login(respondent, "nav-r@example.com")
    assert 'href="/analysis"' in text(analyst.get("/password"))
    assert 'href="/analysis"' not in text(respondent.get("/password"))
