"""Helpers for driving the app like a browser: fetch a form, read its CSRF token, post.

Shared by every app test (CSRF stays on in tests):
    signup(client, "ana@example.com", "correct horse battery")
    login(client, email, password); logout(client)
    post_form(client, "/survey", {...})  # GET the page, add its csrf_token, POST
    create_user(app, email, password, role="analyst")  # straight into the DB
"""

from __future__ import annotations

import html
import re

SESSION_COOKIE = "survey_session"
DEFAULT_PASSWORD = "a sturdy passphrase 42"
_INPUT = re.compile(r"<input\b[^>]*>", re.IGNORECASE)
_VALUE = re.compile(r'\bvalue="([^"]*)"')


def csrf_token(response) -> str:
    """The CSRF token in a page (the first `csrf_token` input); fails when there is none."""
    text = response.get_data(as_text=True)
    for tag in _INPUT.findall(text):
        if 'name="csrf_token"' in tag:
            match = _VALUE.search(tag)
            if match:
                return html.unescape(match.group(1))
    raise AssertionError(f"no csrf_token in the page (status {response.status_code})")


def post_form(client, url: str, data: dict | None = None, *, form_url: str | None = None,
              **kwargs):
    """GET `form_url` (default `url`), then POST `data` plus its CSRF token to `url`."""
    page = client.get(form_url or url)
    payload = dict(data or {})
    payload["csrf_token"] = csrf_token(page)
    return client.post(url, data=payload, **kwargs)


def signup(client, email: str, password: str = DEFAULT_PASSWORD, confirm: str | None = None,
           **kwargs):
    """Sign up through the form (logs the client in on success: 302)."""
    return post_form(client, "/signup", {"email": email, "new_password": password,
                                         "confirm": password if confirm is None else confirm},
                     **kwargs)


def login(client, email: str, password: str = DEFAULT_PASSWORD, next: str | None = None,
          **kwargs):
    """Log in through the form (302 on success, 422 with a message on failure)."""
    url = "/login" + (f"?next={next}" if next else "")
    return post_form(client, url, {"email": email, "password": password}, **kwargs)


def logout(client, **kwargs):
    """Log out with the token of the nav's logout form."""
    return post_form(client, "/logout", form_url="/password", **kwargs)


def change_password(client, current: str, new: str, confirm: str | None = None, **kwargs):
    """Change the password through the form."""
    return post_form(client, "/password", {"current_password": current, "new_password": new,
                                           "confirm": new if confirm is None else confirm},
                     **kwargs)


def session_id(client) -> str | None:
    """The session cookie's value (the server-side session id), or None."""
    cookie = client.get_cookie(SESSION_COOKIE)
    return cookie.value if cookie else None


def create_user(app, email: str, password: str = DEFAULT_PASSWORD,
                role: str = "respondent") -> int:
    """Insert an account directly (no form, no rate limit); returns its id."""
    from survey_app import db
    from survey_app.auth.passwords import hash_password

    with app.app_context(), db.transaction() as cur:
        cur.execute("INSERT INTO users (email, password_hash, role) VALUES (%s, %s, %s)",
                    (email, hash_password(password), role))
        return cur.lastrowid
