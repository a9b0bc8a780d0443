"""Cross-cutting web behaviour: proxy trust, X-Served-By, security headers, 503 pages."""

from __future__ import annotations

import redis
from flask import Flask, Response, render_template
from werkzeug.middleware.proxy_fix import ProxyFix

from survey_app.db import DatabaseUnavailable, close_db
from survey_app.settings import Settings

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'self'"
    ),
}


def init_app(app: Flask, settings: Settings) -> None:
    """Install middleware, headers and error handlers."""
    if settings.trust_proxy_hops:
        hops = settings.trust_proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)

    @app.after_request
    def _identify(response: Response) -> Response:
        response.headers["X-Served-By"] = settings.served_by
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    @app.errorhandler(DatabaseUnavailable)
    @app.errorhandler(redis.RedisError)
    def _unavailable(_exc: Exception):
        return render_template("errors/503.html"), 503

    app.teardown_appcontext(close_db)
