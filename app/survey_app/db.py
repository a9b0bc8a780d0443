"""MariaDB access through PyMySQL: one connection per request, parameterised SQL only.

Connections run in READ COMMITTED: InnoDB then locks only the rows a write touches, not
the gaps between them, so two respondents saving at once do not block each other. A
write that MariaDB still picks as a deadlock victim is re-run (`in_transaction`).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import TypeVar

import pymysql
import pymysql.cursors
from flask import current_app, g
from pymysql.constants import ER

from survey_app.settings import Settings

T = TypeVar("T")
# MariaDB rolled the transaction back and says "try restarting transaction".
CONFLICT_ERRORS = frozenset({ER.LOCK_DEADLOCK, ER.LOCK_WAIT_TIMEOUT})
WRITE_ATTEMPTS = 4


class DatabaseUnavailable(Exception):
    """MariaDB cannot be reached; the app answers 503."""


class TransactionConflict(DatabaseUnavailable):
    """A deadlock or lock wait timeout: nothing was committed, the work may be re-run."""


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
            init_command="SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
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
        error = TransactionConflict if exc.args and exc.args[0] in CONFLICT_ERRORS else (
            DatabaseUnavailable)
        raise error(str(exc)) from None
    except BaseException:
        _rollback_quietly(conn)
        raise


def in_transaction(work: Callable[[pymysql.cursors.DictCursor], T]) -> T:
    """`work(cursor)` in a transaction, re-run after a deadlock or lock wait timeout.

    `work` must only talk to the database (it may run more than once). A conflict in the
    last attempt surfaces as DatabaseUnavailable (the 503 page).
    """
    for attempt in range(1, WRITE_ATTEMPTS):
        try:
            with transaction() as cur:
                return work(cur)
        except TransactionConflict as exc:
            current_app.logger.warning("transaction conflict, attempt %d of %d, running "
                                       "it again: %s", attempt, WRITE_ATTEMPTS, exc)
            time.sleep(random.uniform(0.005, 0.02) * attempt)  # noqa: S311 - jitter only
    with transaction() as cur:
        return work(cur)


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
