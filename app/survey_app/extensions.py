"""Flask extensions, created once here and bound to the app in `init_app`.

The Redis client (one connection pool per app) serves the server-side sessions
(Flask-Session) and the rate-limit counters (Flask-Limiter), so every app container
sharing the Redis shares both. `limiter` is process-wide (Flask-Limiter keeps one
storage per Limiter): apps created in one process must use the same Redis.
"""

from __future__ import annotations

import redis
from flask import Flask, current_app, g, request
from flask_babel import Babel
from flask_limiter import Limiter
from flask_session.redis import RedisSessionInterface
from flask_wtf.csrf import CSRFProtect
from limits import parse_many
from redis.backoff import NoBackoff
from redis.retry import Retry

from survey_app.settings import RATE_LIMIT_FIELDS, Settings, SettingsError

SUPPORTED_LOCALES = ("pt_BR", "en")
LOCALE_COOKIE = "lang"
SESSION_KEY_PREFIX = "survey:session:"
# Endpoints that work without the session (and so without Redis): liveness, readiness.
SESSIONLESS_ENDPOINTS = frozenset({"static", "health.healthz", "health.readyz"})


def client_ip() -> str:
    """The client's address (after the trusted proxy hops): the per-IP rate-limit key."""
    return request.remote_addr or "unknown"


csrf = CSRFProtect()
babel = Babel()
limiter = Limiter(key_func=client_ip, strategy="moving-window", key_prefix="survey:limits")


class ResilientRedisSessionInterface(RedisSessionInterface):
    """Redis sessions that turn a Redis outage while loading into a 503, not a 500.

    Flask opens the session before any view or error handler runs; a failure there
    would be a bare 500. Instead the request gets a null session and
    `raise_if_session_unavailable` (a before_request hook) raises the Redis error
    where the 503 handler sees it.
    """

    def open_session(self, app, request):
        """Load the session; on a Redis error remember it and return no session."""
        try:
            return super().open_session(app, request)
        except redis.RedisError as exc:
            g.session_error = exc
            return None


def raise_if_session_unavailable() -> None:
    """before_request: re-raise a Redis error met while loading the session."""
    exc = g.pop("session_error", None)
    if exc is not None and request.endpoint not in SESSIONLESS_ENDPOINTS:
        raise exc


def redis_client() -> redis.Redis:
    """The app's Redis client (sessions, rate limits)."""
    return current_app.extensions["survey_redis"]


def select_locale() -> str:
    """Brazilian Portuguese unless the person chose English (`?lang=en`, kept in a cookie)."""
    settings: Settings = current_app.extensions["survey_settings"]
    chosen = request.args.get(LOCALE_COOKIE) or request.cookies.get(LOCALE_COOKIE)
    return chosen if chosen in SUPPORTED_LOCALES else settings.default_locale


def _check_rate_limits(settings: Settings) -> None:
    for name in RATE_LIMIT_FIELDS:
        value = getattr(settings, name)
        try:
            parse_many(value)
        except ValueError:
            raise SettingsError(
                f"SURVEY_{name.upper()}: {value!r} is not a rate limit like '5/minute'"
            ) from None


def init_app(app: Flask, settings: Settings) -> None:
    """Bind every extension to `app`."""
    _check_rate_limits(settings)
    client = redis.Redis(
        host=settings.redis_host,
        port=settings.redis_port,
        password=settings.redis_password,
        db=settings.redis_db,
        socket_connect_timeout=2,
        socket_timeout=2,
        health_check_interval=30,
        # One immediate retry (a pooled connection gone stale after a Redis restart);
        # redis-py's default backoff would hold a request for seconds during an outage.
        retry=Retry(NoBackoff(), 1),
    )
    app.extensions["survey_redis"] = client
    app.config.update(
        SESSION_TYPE="redis",
        SESSION_REDIS=client,
        SESSION_KEY_PREFIX=SESSION_KEY_PREFIX,
        SESSION_PERMANENT=True,
        SESSION_USE_SIGNER=False,
        SESSION_COOKIE_NAME="survey_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        SESSION_REFRESH_EACH_REQUEST=True,
        PERMANENT_SESSION_LIFETIME=settings.session_idle_minutes * 60,
        WTF_CSRF_TIME_LIMIT=None,
        BABEL_DEFAULT_LOCALE=settings.default_locale,
        # The password never goes into a URI: the storage reuses the app's pool.
        RATELIMIT_STORAGE_URI="redis://",
        RATELIMIT_STORAGE_OPTIONS={"connection_pool": client.connection_pool},
        RATELIMIT_HEADERS_ENABLED=False,
    )
    app.session_interface = ResilientRedisSessionInterface(
        app, client=client, key_prefix=SESSION_KEY_PREFIX, use_signer=False, permanent=True)
    app.before_request(raise_if_session_unavailable)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale)
    limiter.init_app(app)
