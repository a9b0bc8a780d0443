"""Flask extensions, created once here and bound to the app in `init_app`."""

from __future__ import annotations

import redis
from flask import Flask, current_app, request
from flask_babel import Babel
from flask_session import Session
from flask_wtf.csrf import CSRFProtect

from survey_app.settings import Settings

SUPPORTED_LOCALES = ("pt_BR", "en")
LOCALE_COOKIE = "lang"

csrf = CSRFProtect()
babel = Babel()
server_sessions = Session()


def redis_client() -> redis.Redis:
    """The app's Redis client (sessions, rate limits)."""
    return current_app.extensions["survey_redis"]


def select_locale() -> str:
    """Brazilian Portuguese unless the person chose English (`?lang=en`, kept in a cookie)."""
    settings: Settings = current_app.extensions["survey_settings"]
    chosen = request.args.get(LOCALE_COOKIE) or request.cookies.get(LOCALE_COOKIE)
    return chosen if chosen in SUPPORTED_LOCALES else settings.default_locale


def init_app(app: Flask, settings: Settings) -> None:
    """Bind every extension to `app`."""
    client = redis.Redis(
        host=settings.redis_host,
        port=settings.redis_port,
        password=settings.redis_password,
        db=settings.redis_db,
        socket_connect_timeout=2,
        socket_timeout=2,
        health_check_interval=30,
    )
    app.extensions["survey_redis"] = client
    app.config.update(
        SESSION_TYPE="redis",
        SESSION_REDIS=client,
        SESSION_KEY_PREFIX="survey:session:",
        SESSION_PERMANENT=True,
        SESSION_USE_SIGNER=False,
        SESSION_COOKIE_NAME="survey_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        PERMANENT_SESSION_LIFETIME=settings.session_idle_minutes * 60,
        WTF_CSRF_TIME_LIMIT=None,
        BABEL_DEFAULT_LOCALE=settings.default_locale,
    )
    server_sessions.init_app(app)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale)
