"""Who is logged in: the `User` value, session login/logout, timeouts, decorators.

The server-side session (Redis) holds `uid`, `login_at`, `seen` (epoch seconds) and
`pwd_at` (the account's `password_changed_at` at login). A session is ended when it
has been idle longer than `session_idle_minutes` (Redis also expires it then), is
older than `session_absolute_hours`, or the password changed since it started.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Literal

from flask import abort, current_app, flash, g, redirect, request, session, url_for
from flask_babel import lazy_gettext as _l

from survey_app import db
from survey_app.extensions import SESSIONLESS_ENDPOINTS

Role = Literal["respondent", "analyst"]
clock: Callable[[], float] = time.time  # replaced in tests to move time forward


@dataclass(frozen=True)
class User:
    """The logged-in account."""

    id: int
    email: str
    role: Role

    @property
    def is_analyst(self) -> bool:
        """Whether the account has the analyst role."""
        return self.role == "analyst"


def normalise_email(email: str) -> str:
    """The email as stored: surrounding spaces removed, domain lower-cased."""
    local, at, domain = email.strip().rpartition("@")
    return f"{local}{at}{domain.lower()}" if at else email.strip()


def current_user() -> User | None:
    """The logged-in user of this request, or None (also in `g.user`)."""
    if "user" not in g:
        load_user()
    return g.user


def load_user() -> None:
    """before_request: set `g.user` from the session, ending stale sessions."""
    g.user = None
    if request.endpoint in SESSIONLESS_ENDPOINTS:
        return
    uid = session.get("uid")
    if uid is None:
        return
    settings = current_app.extensions["survey_settings"]
    now = clock()
    idle = now - session.get("seen", 0) > settings.session_idle_minutes * 60
    too_old = now - session.get("login_at", 0) > settings.session_absolute_hours * 3600
    if idle or too_old:
        end_session(_l("Your session expired. Please log in again."))
        return
    rows = db.query("SELECT id, email, role, password_changed_at FROM users WHERE id = %s",
                    (uid,))
    if not rows or _stamp(rows[0]["password_changed_at"]) != session.get("pwd_at"):
        end_session(_l("Please log in again."))
        return
    session["seen"] = now
    row = rows[0]
    g.user = User(id=row["id"], email=row["email"], role=row["role"])


def _stamp(value) -> str:
    return value.isoformat() if value is not None else ""


def start_session(user_id: int, password_changed_at) -> None:
    """Log `user_id` in: a fresh session under a NEW id (the old one is deleted)."""
    now = clock()
    session.clear()
    session.update(uid=user_id, login_at=now, seen=now, pwd_at=_stamp(password_changed_at))
    current_app.session_interface.regenerate(session)
    g.pop("user", None)


def end_session(message=None) -> None:
    """Log out: delete the server-side session; a later one gets a new id."""
    session.clear()
    if message:
        flash(str(message), "info")
        current_app.session_interface.regenerate(session)  # deletes the old key
    g.user = None


def safe_next(target: str | None) -> str | None:
    """`target` when it is a path on this site, else None (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    return target


def login_required(view):
    """Views for logged-in users; others are sent to the login page and back."""
    @wraps(view)
    def wrapped(*args, **kwargs):
        if current_user() is None:
            target = request.full_path.rstrip("?") if request.method == "GET" else None
            return redirect(url_for("auth.login", next=safe_next(target)))
        return view(*args, **kwargs)

    return wrapped


def analyst_required(view):
    """Views for analysts only: 403 for respondents."""
    @wraps(view)
    def wrapped(*args, **kwargs):
        user = current_user()
        if user is None:
            return login_required(view)(*args, **kwargs)
        if not user.is_analyst:
            abort(403)
        return view(*args, **kwargs)

    return wrapped
