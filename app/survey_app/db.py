"""MariaDB access through PyMySQL: one connection per request, parameterised SQL only."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress

import pymysql
import pymysql.cursors
from flask import current_app, g

from survey_app.settings import Settings


class DatabaseUnavailable(Exception):
    """MariaDB cannot be reached; the app answers 503."""


def connect(settings: Settings) -> pymysql.connections.Connection:
    """Open a new connection (autocommit off, utf8mb4, dict rows)."""
    try:
        return pymysql.connect(
            host=settings.db_host,
            port=settings.db_port,
            user=settings.db_user,
            password=settings.db_password,
            database=settings.db_name,
            charset="utf8mb4",
            autocommit=False,
            connect_timeout=settings.db_connect_timeout,
            read_timeout=settings.db_io_timeout,
            write_timeout=settings.db_io_timeout,
            cursorclass=pymysql.cursors.DictCursor,
        )
    except pymysql.err.OperationalError as exc:
        raise DatabaseUnavailable(" ".join(map(str, exc.args)) or str(exc)) from None


def get_db() -> pymysql.connections.Connection:
    """The request's connection, opened on first use."""
    if "db" not in g:
        g.db = connect(current_app.extensions["survey_settings"])
    return g.db


@contextmanager
def transaction() -> Iterator[pymysql.cursors.DictCursor]:
    """A cursor in a transaction: committed on success, rolled back on any error.

    A lost connection in the middle becomes DatabaseUnavailable, so nothing is
    acknowledged that was not committed.
    """
    conn = get_db()
    try:
        with conn.cursor() as cur:
            yield cur
        conn.commit()
    except (pymysql.err.OperationalError, pymysql.err.InterfaceError) as exc:
        _rollback_quietly(conn)
        raise DatabaseUnavailable(str(exc)) from None
    except BaseException:
        _rollback_quietly(conn)
        raise


def query(sql: str, args: tuple | dict | None = None) -> list[dict]:
    """Run a read-only statement and return all rows."""
    conn = get_db()
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            return list(cur.fetchall())
    except (pymysql.err.OperationalError, pymysql.err.InterfaceError) as exc:
        raise DatabaseUnavailable(str(exc)) from None


def _rollback_quietly(conn: pymysql.connections.Connection) -> None:
    with suppress(pymysql.err.Error):
        conn.rollback()


def close_db(_exc: BaseException | None = None) -> None:
    """Teardown: close the request's connection."""
    conn = g.pop("db", None)
    if conn is not None:
        with suppress(pymysql.err.Error):
            conn.close()
