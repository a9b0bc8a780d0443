"""Sign up, log in, log out (POST), change password; rate-limited per IP and account."""

from __future__ import annotations

import hashlib

import pymysql
from flask import current_app, flash, jsonify, redirect, render_template, request, session
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import generate_csrf

from survey_app import db
from survey_app.auth import bp
from survey_app.auth.forms import ChangePasswordForm, LoginForm, SignupForm
from survey_app.auth.passwords import (
    dummy_hash,
    hash_password,
    needs_rehash,
    verify_password,
)
from survey_app.auth.users import (
    current_user,
    end_session,
    login_required,
    normalise_email,
    safe_next,
    start_session,
)
from survey_app.extensions import limiter

INVALID = 422  # status of a form sent back with errors


def _limit(name: str):
    """The configured rate limit `name` (read per request, so tests can change it)."""
    return lambda: getattr(current_app.extensions["survey_settings"], name)


def _submitted_account() -> str:
    """Per-account rate-limit key: a digest of the submitted email, case-folded."""
    email = (request.form.get("email") or "").strip().lower()[:254]
    return "account:" + hashlib.sha256(email.encode()).hexdigest()[:32]


def _session_account() -> str:
    """Per-account rate-limit key for a logged-in user."""
    return f"user:{session.get('uid', 'anonymous')}"


def _home() -> str:
    return request.script_root + "/"


def _after_login() -> str:
    return safe_next(request.args.get("next")) or _home()


def _password_changed_at(cur, user_id: int):
    cur.execute("SELECT password_changed_at FROM users WHERE id = %s", (user_id,))
    return cur.fetchone()["password_changed_at"]


@bp.route("/signup", methods=["GET", "POST"])
@limiter.limit(_limit("limit_signup_ip"), methods=["POST"])
@limiter.limit(_limit("limit_signup_account"), methods=["POST"], key_func=_submitted_account)
def signup():
    """Create a respondent account and log it in."""
    if current_user() is not None:
        return redirect(_home())
    form = SignupForm()
    if form.validate_on_submit():
        email = normalise_email(form.email.data)
        password_hash = hash_password(form.new_password.data)

        def create(cur) -> tuple[int, object]:
            cur.execute("INSERT INTO users (email, password_hash, locale) "
                        "VALUES (%s, %s, %s)", (email, password_hash, str(get_locale())))
            user_id = cur.lastrowid
            return user_id, _password_changed_at(cur, user_id)

        try:
            user_id, changed_at = db.in_transaction(create)
        except pymysql.err.IntegrityError:
            form.email.errors.append(_("An account with this email already exists. "
                                       "Log in instead."))
        else:
            start_session(user_id, changed_at)
            flash(_("Welcome! Your account is ready."), "success")
            return redirect(_home())
    status = INVALID if form.errors else 200
    return render_template("auth/signup.html", form=form), status


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_limit("limit_login_ip"), methods=["POST"])
@limiter.limit(_limit("limit_login_account"), methods=["POST"], key_func=_submitted_account)
def login():
    """Log in; one message for every failure, the same work for unknown emails."""
    form = LoginForm()
    if form.validate_on_submit():
        email = normalise_email(form.email.data)
        rows = db.query("SELECT id, password_hash, password_changed_at FROM users "
                        "WHERE email = %s", (email,))
        if rows and verify_password(rows[0]["password_hash"], form.password.data):
            user = rows[0]
            if needs_rehash(user["password_hash"]):
                with db.transaction() as cur:
                    cur.execute("UPDATE users SET password_hash = %s WHERE id = %s",
                                (hash_password(form.password.data), user["id"]))
            start_session(user["id"], user["password_changed_at"])
            return redirect(_after_login())
        if not rows:
            verify_password(dummy_hash(), form.password.data)
        form.form_errors.append(_("Wrong email or password."))
    status = INVALID if form.errors or form.form_errors else 200
    return render_template("auth/login.html", form=form), status


@bp.post("/logout")
def logout():
    """Log out: the server-side session is deleted."""
    end_session(_l("You have logged out."))
    return redirect(_home())


@bp.get("/session/keepalive")
def keepalive():
    """Refresh the session (any request does) and give the page this session's CSRF token.

    Called by `static/js/keepalive.js` while someone works on a long form, and when they
    come back to its tab (maybe after logging in again elsewhere: a new session).
    """
    response = jsonify(logged_in=current_user() is not None, csrf_token=generate_csrf())
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/password", methods=["GET", "POST"])
@login_required
@limiter.limit(_limit("limit_password_ip"), methods=["POST"])
@limiter.limit(_limit("limit_password_account"), methods=["POST"], key_func=_session_account)
def change_password():
    """Change the password (the current one is required); other sessions end."""
    user = current_user()
    form = ChangePasswordForm(email=user.email)
    if form.validate_on_submit():
        rows = db.query("SELECT password_hash FROM users WHERE id = %s", (user.id,))
        if not verify_password(rows[0]["password_hash"], form.current_password.data):
            form.current_password.errors.append(_("The current password is not correct."))
        else:
            with db.transaction() as cur:
                cur.execute("UPDATE users SET password_hash = %s, "
                            "password_changed_at = CURRENT_TIMESTAMP(6) WHERE id = %s",
                            (hash_password(form.new_password.data), user.id))
                changed_at = _password_changed_at(cur, user.id)
            start_session(user.id, changed_at)
            flash(_("Your password was changed."), "success")
            return redirect(_home())
    status = INVALID if form.errors else 200
    return render_template("auth/password.html", form=form), status
