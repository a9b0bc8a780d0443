"""Cross-cutting web behaviour: proxy trust, X-Served-By, security headers, error pages."""

from __future__ import annotations

from urllib.parse import urlencode

import redis
from flask import Flask, Response, g, render_template, request
from flask_wtf.csrf import CSRFError
from jinja2 import TemplateNotFound
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.middleware.proxy_fix import ProxyFix

from survey_app.db import DatabaseUnavailable, close_db
from survey_app.extensions import LOCALE_COOKIE, SUPPORTED_LOCALES
from survey_app.settings import Settings

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "object-src 'none'; frame-ancestors 'none'; form-action 'self'; base-uri 'self'"
    ),
}
UNAVAILABLE = (DatabaseUnavailable, redis.RedisError)
LOCALE_COOKIE_MAX_AGE = 365 * 24 * 3600


class IdentifyMiddleware:
    """WSGI middleware: `X-Served-By` and the security headers on every response.

    At the WSGI level it covers everything Flask sends, static files and error
    responses included; headers a view already set are kept.
    """

    def __init__(self, wsgi_app, served_by: str) -> None:
        self.wsgi_app = wsgi_app
        self.served_by = served_by

    def __call__(self, environ, start_response):
        """Add the headers in `start_response`."""
        def start(status, headers, exc_info=None):
            present = {name.lower() for name, _ in headers}
            headers = [(n, v) for n, v in headers if n.lower() != "x-served-by"]
            headers.append(("X-Served-By", self.served_by))
            headers.extend((n, v) for n, v in SECURITY_HEADERS.items()
                           if n.lower() not in present)
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, start)


def lang_url(locale: str) -> str:
    """The current page's URL with `?lang=` set to `locale` (the language switch)."""
    args = request.args.to_dict(flat=False)
    args[LOCALE_COOKIE] = [locale]
    return f"{request.script_root}{request.path}?{urlencode(args, doseq=True)}"


def render_error(code: int, error: Exception | None = None) -> tuple[str, int]:
    """The error page for `code` in the user's language (a generic one when none exists)."""
    try:
        return render_template(f"errors/{code}.html", code=code, error=error), code
    except TemplateNotFound:
        return render_template("errors/generic.html", code=code, error=error), code


def init_app(app: Flask, settings: Settings) -> None:
    """Install middleware, headers, the locale cookie and error handlers."""
    wsgi = app.wsgi_app
    if settings.trust_proxy_hops:
        hops = settings.trust_proxy_hops
        wsgi = ProxyFix(wsgi, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)
    app.wsgi_app = IdentifyMiddleware(wsgi, settings.served_by)

    @app.after_request
    def _after(response: Response) -> Response:
        chosen = request.args.get(LOCALE_COOKIE)
        if chosen in SUPPORTED_LOCALES and request.cookies.get(LOCALE_COOKIE) != chosen:
            response.set_cookie(LOCALE_COOKIE, chosen, max_age=LOCALE_COOKIE_MAX_AGE,
                                samesite="Lax", secure=settings.secure_cookies,
                                httponly=True)
        if g.get("user") is not None:
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.errorhandler(DatabaseUnavailable)
    @app.errorhandler(redis.RedisError)
    def _unavailable(exc: Exception):
        app.logger.warning("dependency unavailable: %s: %s", type(exc).__name__, exc)
        body, status = render_error(503)
        return body, status, {"Retry-After": "30"}

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        if exc.code is None or exc.code < 400:
            return exc
        return render_error(exc.code, exc)

    @app.errorhandler(CSRFError)
    def _csrf_error(exc: CSRFError):
        return render_template("errors/csrf.html", code=400, error=exc), 400

    @app.errorhandler(InternalServerError)
    def _internal(exc: InternalServerError):
        # Errors outside the views (e.g. saving the session in Redis) arrive here.
        if isinstance(exc.original_exception, UNAVAILABLE):
            return _unavailable(exc.original_exception)
        return render_error(500)

    @app.context_processor
    def _helpers() -> dict:
        return {"has_endpoint": lambda name: name in app.view_functions,
                "lang_url": lang_url}

    app.teardown_appcontext(close_db)


def add_fallback_home(app: Flask) -> None:
    """A plain home page at `/` unless a blueprint already serves one."""
    if any(rule.rule == "/" for rule in app.url_map.iter_rules()):
        return

    @app.get("/", endpoint="home")
    def home():
        return render_template("home.html")
