"""Settings from the environment, with the `*_FILE` convention for secrets.

`SURVEY_DB_PASSWORD_FILE=/run/secrets/db_password` is read in place of
`SURVEY_DB_PASSWORD`, so a secret can come from a mounted file instead of the
container's environment.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_CENSUS_FILE = Path(__file__).parent / "data" / "census_example.csv"


RATE_LIMIT_FIELDS = ("limit_login_ip", "limit_login_account", "limit_signup_ip",
                     "limit_signup_account", "limit_password_ip", "limit_password_account")


class SettingsError(RuntimeError):
    """A required setting is missing or malformed."""


def env_value(name: str, environ: Mapping[str, str], default: str | None = None) -> str | None:
    """Value of NAME, read from the file named by NAME_FILE when that is set."""
    file_name = environ.get(f"{name}_FILE")
    if file_name:
        try:
            return Path(file_name).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise SettingsError(f"{name}_FILE: cannot read {file_name}: {exc.strerror}") from None
    return environ.get(name, default)


def _int(name: str, environ: Mapping[str, str], default: int) -> int:
    raw = env_value(name, environ)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None


@dataclass(frozen=True)
class Settings:
    """Everything the app reads from its environment."""

    secret_key: str = field(repr=False)
    db_host: str = "127.0.0.1"
    db_port: int = 3306
    db_name: str = "survey"
    db_user: str = "survey"
    db_password: str = field(default="", repr=False)
    db_connect_timeout: int = 5
    # Seconds one MariaDB read or write may wait: well under Nginx's proxy_read_timeout
    # (35 s) and gunicorn's worker timeout (30 s), so a query stuck on a dropped tunnel
    # ends in the app's 503 page (answers kept), not in a proxy error.
    db_io_timeout: int = 10
    redis_host: str = "127.0.0.1"
    redis_port: int = 6379
    redis_password: str | None = field(default=None, repr=False)
    redis_db: int = 0
    trust_proxy_hops: int = 0
    session_idle_minutes: int = 30
    session_absolute_hours: int = 12
    secure_cookies: bool = False
    served_by: str = field(default_factory=socket.gethostname)
    census_file: Path = DEFAULT_CENSUS_FILE
    default_locale: str = "pt_BR"
    survey_closes_at: str | None = None  # ISO 8601; parsed by survey_app.survey.closing_time
    # Rate limits ("N/period", Flask-Limiter syntax), per client IP and per account.
    limit_login_ip: str = "10/minute"
    limit_login_account: str = "5/minute"
    limit_signup_ip: str = "20/hour"
    limit_signup_account: str = "5/hour"
    limit_password_ip: str = "10/minute"  # noqa: S105 - a rate limit
    limit_password_account: str = "5/minute"  # noqa: S105

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read SURVEY_* variables; a missing secret key stops the app at start."""
        env = os.environ if environ is None else environ
        secret = env_value("SURVEY_SECRET_KEY", env)
        if not secret or len(secret) < 16:
            raise SettingsError(
                "SURVEY_SECRET_KEY (or SURVEY_SECRET_KEY_FILE) must be set to at least 16 "
                "random characters"
            )
        return cls(
            secret_key=secret,
            db_host=env_value("SURVEY_DB_HOST", env, "127.0.0.1") or "127.0.0.1",
            db_port=_int("SURVEY_DB_PORT", env, 3306),
            db_name=env_value("SURVEY_DB_NAME", env, "survey") or "survey",
            db_user=env_value("SURVEY_DB_USER", env, "survey") or "survey",
            db_password=env_value("SURVEY_DB_PASSWORD", env, "") or "",
            db_connect_timeout=_int("SURVEY_DB_CONNECT_TIMEOUT", env, 5),
            db_io_timeout=_int("SURVEY_DB_IO_TIMEOUT", env, 10),
            redis_host=env_value("SURVEY_REDIS_HOST", env, "127.0.0.1") or "127.0.0.1",
            redis_port=_int("SURVEY_REDIS_PORT", env, 6379),
            redis_password=env_value("SURVEY_REDIS_PASSWORD", env) or None,
            redis_db=_int("SURVEY_REDIS_DB", env, 0),
            trust_proxy_hops=_int("SURVEY_TRUST_PROXY_HOPS", env, 0),
            session_idle_minutes=_int("SURVEY_SESSION_IDLE_MINUTES", env, 30),
            session_absolute_hours=_int("SURVEY_SESSION_ABSOLUTE_HOURS", env, 12),
            secure_cookies=(env_value("SURVEY_SECURE_COOKIES", env, "0") or "0") in ("1", "true"),
            served_by=env_value("SURVEY_SERVED_BY", env) or socket.gethostname(),
            census_file=Path(env_value("SURVEY_CENSUS_FILE", env) or DEFAULT_CENSUS_FILE),
            default_locale=env_value("SURVEY_DEFAULT_LOCALE", env, "pt_BR") or "pt_BR",
            survey_closes_at=env_value("SURVEY_CLOSES_AT", env) or None,
            **{name: env_value(f"SURVEY_{name.upper()}", env) or getattr(cls, name)
               for name in RATE_LIMIT_FIELDS},
        )
