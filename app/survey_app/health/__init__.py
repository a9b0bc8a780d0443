"""Liveness (`/healthz`) and readiness (`/readyz`: MariaDB and Redis answer)."""

from __future__ import annotations

from flask import Blueprint, jsonify

from survey_app import db, extensions

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """The process lives."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    """Ready when MariaDB and Redis both answer; 503 naming what does not."""
    checks = {"mariadb": _check_mariadb(), "redis": _check_redis()}
    ready = all(v == "ok" for v in checks.values())
    return jsonify(status="ok" if ready else "unavailable", checks=checks), 200 if ready else 503


def _check_mariadb() -> str:
    try:
        db.query("SELECT 1")
    except db.DatabaseUnavailable:
        return "unreachable"
    return "ok"


def _check_redis() -> str:
    import redis

    try:
        extensions.redis_client().ping()
    except redis.RedisError:
        return "unreachable"
    return "ok"
