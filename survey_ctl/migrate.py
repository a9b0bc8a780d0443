"""The one SQL migration runner (tests, the app's operators and `surveyctl db-migrate`).

Migrations are files `NNNN_name.sql` in one folder; the integer prefix is the version.
Applied versions are recorded with the sha256 of their file in `schema_migrations`.

Rules the runner enforces:
- a run holds `GET_LOCK('<db>.schema_migrations')`, so two runs never interleave;
- it refuses to run when an applied file changed, an applied version is missing from
  the folder, or a pending file is older than an applied one (naming the file);
- a failing file is named with its statement number and the SQL error, and is NOT
  recorded as applied.

MariaDB commits DDL implicitly, so a file that fails halfway leaves the statements
before the failure in place. Keep each file ONE logical step and write it to be
re-runnable (`CREATE TABLE IF NOT EXISTS`, `ADD COLUMN IF NOT EXISTS`,
`CREATE INDEX IF NOT EXISTS`, ...): then fixing the file and running again is safe.

Statement splitting (see `split_statements`): statements end with `;` outside quotes
and comments. `'...'`, `"..."`, `` `...` `` (with backslash and doubled-quote escapes),
`-- `, `#` and `/* */` comments are understood; comments are dropped, except MariaDB
executable comments `/*! ... */`, which are kept. `DELIMITER` is not supported, so
stored routines with `;` in their body cannot be written in a migration file.

Only PyMySQL is imported; no Flask.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from survey_ctl.errors import OperationError

MIGRATION_TABLE = "schema_migrations"
FILE_PATTERN = re.compile(r"^(?P<version>\d{4,})_(?P<name>[a-z0-9][a-z0-9_]*)\.sql$")
DEFAULT_LOCK_TIMEOUT = 10

State = Literal["applied", "pending", "changed", "missing"]


class MigrationError(OperationError):
    """A migration could not be loaded, checked or applied."""


@dataclass(frozen=True)
class Migration:
    """One migration file."""

    version: int
    name: str
    path: Path
    checksum: str

    @property
    def filename(self) -> str:
        """The file's name, as shown in messages."""
        return self.path.name

    def statements(self) -> list[str]:
        """The file's SQL statements, in order."""
        return split_statements(self.path.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class MigrationState:
    """A migration and whether it is applied in a database."""

    version: int
    name: str
    state: State
    applied_at: datetime | None = None
    filename: str | None = None


def load_migrations(folder: Path) -> list[Migration]:
    """The migration files of `folder`, ordered by version.

    Files not ending in `.sql` (and hidden files) are ignored; a `.sql` file with a
    malformed name or a duplicate version is an error.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise MigrationError(f"migration folder {folder} does not exist",
                             "point the runner at app/migrations")
    found: dict[int, Migration] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.suffix != ".sql":
            continue
        match = FILE_PATTERN.match(path.name)
        if not match:
            raise MigrationError(
                f"{path.name}: malformed migration file name",
                "name files NNNN_lowercase_name.sql, e.g. 0003_add_index.sql",
            )
        version = int(match["version"])
        if version in found:
            raise MigrationError(
                f"{path.name}: version {version} is also used by {found[version].filename}",
                "give each migration file its own number",
            )
        found[version] = Migration(version, match["name"], path,
                                   hashlib.sha256(path.read_bytes()).hexdigest())
    return [found[v] for v in sorted(found)]


def split_statements(sql: str) -> list[str]:
    """Split SQL text into statements at `;` outside quotes and comments.

    Comments are removed (executable `/*! */` comments are kept); empty statements are
    dropped. A line starting with `DELIMITER` is refused.
    """
    statements: list[str] = []
    current: list[str] = []
    i, n = 0, len(sql)
    at_line_start = True
    while i < n:
        ch = sql[i]
        if at_line_start and re.match(r"[ \t]*delimiter\b", sql[i:i + 40], re.IGNORECASE):
            raise MigrationError("DELIMITER is not supported in migration files",
                                 "write one statement per `;`, without stored routines")
        at_line_start = False
        if ch in "'\"`":
            end = _quoted_end(sql, i)
            current.append(sql[i:end])
            i = end
        elif sql.startswith("/*!", i) or sql.startswith("/*M!", i):
            end = sql.find("*/", i + 2)
            end = n if end < 0 else end + 2
            current.append(sql[i:end])
            i = end
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            if end < 0:
                raise MigrationError("unterminated /* comment")
            current.append(" ")
            i = end + 2
        elif ch == "#" or (sql.startswith("--", i) and (i + 2 == n or sql[i + 2] in " \t\r\n")):
            end = sql.find("\n", i)
            i = n if end < 0 else end
        elif ch == ";":
            _flush(current, statements)
            i += 1
        else:
            current.append(ch)
            if ch == "\n":
                at_line_start = True
            i += 1
    _flush(current, statements)
    return statements


def _quoted_end(sql: str, start: int) -> int:
    """Index just past the quoted string opening at `start`."""
    quote = sql[start]
    i = start + 1
    while i < len(sql):
        ch = sql[i]
        if ch == "\\" and quote != "`":
            i += 2
        elif ch == quote:
            if i + 1 < len(sql) and sql[i + 1] == quote:
                i += 2
            else:
                return i + 1
        else:
            i += 1
    raise MigrationError(f"unterminated {quote} quoted string")


def _flush(current: list[str], statements: list[str]) -> None:
    text = "".join(current).strip()
    if text:
        statements.append(text)
    current.clear()


def migrate(conn, folder: Path, dry_run: bool = False,
            lock_timeout: int = DEFAULT_LOCK_TIMEOUT) -> list[Migration]:
    """Apply the pending migrations of `folder` in order; return them.

    With `dry_run`, nothing is changed (not even the bookkeeping table) and the
    migrations that would be applied are returned.
    """
    migrations = load_migrations(folder)
    with _migration_lock(conn, lock_timeout):
        applied = _applied(conn)
        pending = _check(migrations, applied)
        if dry_run:
            return pending
        if pending:
            _ensure_table(conn)
        for migration in pending:
            _apply(conn, migration)
        return pending


def migration_status(conn, folder: Path) -> list[MigrationState]:
    """Every migration (files and recorded versions) with its state, by version."""
    migrations = {m.version: m for m in load_migrations(folder)}
    applied = _applied(conn)
    states: list[MigrationState] = []
    for version in sorted(set(migrations) | set(applied)):
        file, row = migrations.get(version), applied.get(version)
        if row is None:
            states.append(MigrationState(version, file.name, "pending", None, file.filename))
        elif file is None:
            states.append(MigrationState(version, row["name"], "missing", row["applied_at"]))
        else:
            state: State = "applied" if row["checksum"] == file.checksum else "changed"
            states.append(MigrationState(version, file.name, state, row["applied_at"],
                                         file.filename))
    return states


def _check(migrations: list[Migration], applied: dict[int, dict]) -> list[Migration]:
    """The pending migrations, after refusing changed, missing or out-of-order files."""
    by_version = {m.version: m for m in migrations}
    for version, row in sorted(applied.items()):
        file = by_version.get(version)
        if file is None:
            raise MigrationError(
                f"migration {version:04d}_{row['name']}.sql is applied in the database but "
                "missing from the folder",
                "restore the file; applied migrations are never deleted",
            )
        if file.checksum != row["checksum"]:
            raise MigrationError(
                f"{file.filename} changed after it was applied (checksum differs)",
                "restore the applied content and put the change in a new migration file",
            )
    pending = [m for m in migrations if m.version not in applied]
    newest = max(applied, default=0)
    late = [m for m in pending if m.version < newest]
    if late:
        raise MigrationError(
            f"{late[0].filename} is pending but a later version ({newest}) is already applied",
            "renumber the new file above the newest applied version",
        )
    return pending


def _apply(conn, migration: Migration) -> None:
    statements = migration.statements()
    started = time.monotonic()
    with _cursor(conn) as cur:
        for number, statement in enumerate(statements, start=1):
            try:
                cur.execute(statement)
            except Exception as exc:
                _rollback(conn)
                raise MigrationError(
                    f"{migration.filename}: statement {number} of {len(statements)} failed: "
                    f"{_sql_error(exc)}",
                    "nothing was recorded for this file; DDL before the failing statement "
                    "stays (MariaDB commits DDL), so fix the file and run again",
                ) from None
        elapsed_ms = int((time.monotonic() - started) * 1000)
        cur.execute(
            f"INSERT INTO {MIGRATION_TABLE} (version, name, checksum, execution_ms) "  # noqa: S608
            "VALUES (%s, %s, %s, %s)",
            (migration.version, migration.name, migration.checksum, elapsed_ms),
        )
    conn.commit()


def _sql_error(exc: Exception) -> str:
    args = getattr(exc, "args", ())
    if len(args) == 2 and isinstance(args[0], int):
        return f"({args[0]}) {args[1]}"
    return str(exc) or type(exc).__name__


def _rollback(conn) -> None:
    with suppress(Exception):  # the original error is what matters
        conn.rollback()


def _cursor(conn):
    """A plain tuple cursor, whatever the connection's default cursor class."""
    import pymysql.cursors

    return conn.cursor(pymysql.cursors.Cursor)


def _ensure_table(conn) -> None:
    with _cursor(conn) as cur:
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {MIGRATION_TABLE} ("
            " version INT UNSIGNED NOT NULL PRIMARY KEY,"
            " name VARCHAR(255) NOT NULL,"
            " checksum CHAR(64) NOT NULL,"
            " applied_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),"
            " execution_ms INT UNSIGNED NOT NULL DEFAULT 0"
            ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
        )
    conn.commit()


def _applied(conn) -> dict[int, dict]:
    """Recorded migrations by version (empty when the table does not exist yet)."""
    with _cursor(conn) as cur:
        cur.execute(
            "SELECT COUNT(*) FROM information_schema.tables "
            "WHERE table_schema = DATABASE() AND table_name = %s", (MIGRATION_TABLE,))
        if not cur.fetchone()[0]:
            return {}
        cur.execute(f"SELECT version, name, checksum, applied_at FROM {MIGRATION_TABLE}")  # noqa: S608
        rows = cur.fetchall()
    conn.commit()  # end the read snapshot so later runs see fresh rows
    return {int(v): {"name": n, "checksum": c, "applied_at": a} for v, n, c, a in rows}


@contextmanager
def _migration_lock(conn, timeout: int) -> Iterator[None]:
    """Hold `GET_LOCK('<db>.schema_migrations', timeout)` for the duration of a run."""
    with _cursor(conn) as cur:
        cur.execute("SELECT DATABASE()")
        database = cur.fetchone()[0]
        if not database:
            raise MigrationError("the connection has no database selected",
                                 "connect with database=<name>")
        name = lock_name(database)
        cur.execute("SELECT GET_LOCK(%s, %s)", (name, timeout))
        got = cur.fetchone()[0]
    if got != 1:
        raise MigrationError(
            f"another migration run holds the lock {name!r} (waited {timeout}s)",
            "wait for the other run to finish, then run again",
        )
    try:
        yield
    finally:
        with suppress(Exception), _cursor(conn) as cur:  # a lost connection releases it too
            cur.execute("SELECT RELEASE_LOCK(%s)", (name,))


def lock_name(database: str) -> str:
    """The advisory lock's name for `database` (at most 64 characters)."""
    name = f"{database}.{MIGRATION_TABLE}"
    if len(name) > 64:
        name = f"{hashlib.sha256(database.encode()).hexdigest()[:40]}.{MIGRATION_TABLE}"
    return name
