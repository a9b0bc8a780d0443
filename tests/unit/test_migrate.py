"""The migration runner on a real MariaDB."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from survey_ctl.errors import OperationError
from survey_ctl.migrate import (
    MigrationError,
    load_migrations,
    lock_name,
    migrate,
    migration_status,
    split_statements,
)
from tests.conftest import MIGRATIONS


@pytest.fixture
def dbname(mariadb):
    """An empty database for one test."""
    name = mariadb.create_database("m")
    yield name
    mariadb.drop_database(name)


@pytest.fixture
def conn(mariadb, dbname):
    with mariadb.connect(dbname) as connection:
        yield connection


def write(folder: Path, name: str, sql: str) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(sql, encoding="utf-8")
    return path


def tables(conn) -> set[str]:
    with conn.cursor() as cur:
        cur.execute("SHOW TABLES")
        return {row[0] for row in cur.fetchall()}


def applied_versions(conn) -> list[int]:
    with conn.cursor() as cur:
        cur.execute("SELECT version FROM schema_migrations ORDER BY version")
        return [row[0] for row in cur.fetchall()]


@pytest.fixture
def folder(tmp_path) -> Path:
    folder = tmp_path / "migrations"
    write(folder, "0001_first.sql", "CREATE TABLE IF NOT EXISTS a (id INT PRIMARY KEY);\n")
    write(folder, "0002_second.sql",
          "-- seeds a row; the ; in the string must not split\n"
          "CREATE TABLE IF NOT EXISTS b (id INT PRIMARY KEY, note VARCHAR(20));\n"
          "INSERT INTO b VALUES (1, 'x;y');\n")
    write(folder, "0010_third.sql", "ALTER TABLE a ADD COLUMN IF NOT EXISTS c INT;")
    write(folder, "README.md", "not a migration")
    return folder


def test_load_orders_by_version_and_checksums(folder):
    migrations = load_migrations(folder)
    assert [(m.version, m.name) for m in migrations] == [(1, "first"), (2, "second"),
                                                         (10, "third")]
    assert all(len(m.checksum) == 64 for m in migrations)


@pytest.mark.parametrize("name", ["1_short.sql", "0003-dash.sql", "0003_Upper.sql", "abcd_x.sql"])
def test_malformed_name_is_an_error(folder, name):
    write(folder, name, "SELECT 1;")
    with pytest.raises(MigrationError, match="malformed") as info:
        load_migrations(folder)
    assert name in info.value.message
    assert isinstance(info.value, OperationError)


def test_duplicate_version_is_an_error(folder):
    write(folder, "0002_again.sql", "SELECT 1;")
    with pytest.raises(MigrationError, match="version 2 is also used"):
        load_migrations(folder)


def test_split_respects_quotes_and_comments():
    sql = (
        "/* header; comment */\n"
        "INSERT INTO t VALUES ('a;b', \"c;d\", 'it''s', 'back\\'slash;');  -- trailing; comment\n"
        "# hash comment;\n"
        "SELECT `weird;name` FROM t;\n"
        "/*!40101 SET NAMES utf8mb4 */;\n"
        "SELECT 1--1;\n"
        ";;\n"
    )
    assert split_statements(sql) == [
        "INSERT INTO t VALUES ('a;b', \"c;d\", 'it''s', 'back\\'slash;')",
        "SELECT `weird;name` FROM t",
        "/*!40101 SET NAMES utf8mb4 */",
        "SELECT 1--1",
    ]


def test_split_refuses_delimiter_and_unterminated_strings():
    with pytest.raises(MigrationError, match="DELIMITER"):
        split_statements("DELIMITER //\nCREATE PROCEDURE p() BEGIN SELECT 1; END//")
    with pytest.raises(MigrationError, match="unterminated"):
        split_statements("SELECT 'open;")


def test_applies_in_order_then_nothing_on_second_run(conn, folder):
    applied = migrate(conn, folder)
    assert [m.version for m in applied] == [1, 2, 10]
    assert {"a", "b", "schema_migrations"} <= tables(conn)
    assert applied_versions(conn) == [1, 2, 10]
    with conn.cursor() as cur:
        cur.execute("SELECT note FROM b")
        assert cur.fetchall() == (("x;y",),)
    assert migrate(conn, folder) == []
    write(folder, "0011_fourth.sql", "CREATE TABLE IF NOT EXISTS d (id INT);")
    assert [m.version for m in migrate(conn, folder)] == [11]


def test_dry_run_applies_nothing(conn, folder):
    would = migrate(conn, folder, dry_run=True)
    assert [m.version for m in would] == [1, 2, 10]
    assert tables(conn) == set()
    migrate(conn, folder)
    write(folder, "0011_fourth.sql", "CREATE TABLE d (id INT);")
    assert [m.version for m in migrate(conn, folder, dry_run=True)] == [11]
    assert "d" not in tables(conn)


def test_changed_applied_file_is_refused(conn, folder):
    migrate(conn, folder)
    write(folder, "0002_second.sql", "CREATE TABLE IF NOT EXISTS b (id INT PRIMARY KEY);")
    write(folder, "0011_fourth.sql", "CREATE TABLE d (id INT);")
    with pytest.raises(MigrationError, match=r"0002_second\.sql changed") as info:
        migrate(conn, folder)
    assert "new migration" in info.value.hint
    assert "d" not in tables(conn)


def test_missing_applied_file_is_refused(conn, folder):
    migrate(conn, folder)
    (folder / "0010_third.sql").unlink()
    with pytest.raises(MigrationError, match=r"0010_third\.sql is applied .* missing"):
        migrate(conn, folder)


def test_out_of_order_pending_file_is_refused(conn, folder):
    migrate(conn, folder)
    write(folder, "0005_late.sql", "CREATE TABLE late (id INT);")
    with pytest.raises(MigrationError, match=r"0005_late\.sql is pending"):
        migrate(conn, folder)


def test_failing_migration_names_file_statement_error_and_records_nothing(conn, folder):
    migrate(conn, folder)
    path = write(folder, "0011_broken.sql",
                 "CREATE TABLE IF NOT EXISTS e (id INT);\nINSERT INTO nowhere VALUES (1);\n")
    with pytest.raises(MigrationError) as info:
        migrate(conn, folder)
    message = info.value.message
    assert "0011_broken.sql" in message and "statement 2 of 2" in message
    assert "1146" in message and "nowhere" in message
    assert "run again" in info.value.hint
    assert applied_versions(conn) == [1, 2, 10]
    # The fix is re-runnable: the first statement already ran and is idempotent.
    path.write_text("CREATE TABLE IF NOT EXISTS e (id INT);\nINSERT INTO e VALUES (1);\n")
    assert [m.version for m in migrate(conn, folder)] == [11]
    assert applied_versions(conn) == [1, 2, 10, 11]


def test_failing_dml_is_rolled_back(conn, tmp_path):
    folder = tmp_path / "m"
    write(folder, "0001_t.sql", "CREATE TABLE IF NOT EXISTS t (id INT PRIMARY KEY);")
    migrate(conn, folder)
    write(folder, "0002_rows.sql", "INSERT INTO t VALUES (1);\nINSERT INTO t VALUES (1);")
    with pytest.raises(MigrationError, match="Duplicate entry"):
        migrate(conn, folder)
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM t")
        assert cur.fetchone()[0] == 0


def test_concurrent_run_is_refused_by_the_lock(mariadb, dbname, conn, folder):
    with mariadb.connect(dbname) as other, other.cursor() as cur:
        cur.execute("SELECT GET_LOCK(%s, 0)", (lock_name(dbname),))
        assert cur.fetchone()[0] == 1
        with pytest.raises(MigrationError, match="another migration run holds the lock"):
            migrate(conn, folder, lock_timeout=0)
        assert tables(conn) == set()
        cur.execute("SELECT RELEASE_LOCK(%s)", (lock_name(dbname),))
    assert len(migrate(conn, folder)) == 3


def test_two_simultaneous_runs_apply_each_file_once(mariadb, dbname, tmp_path):
    folder = tmp_path / "m"
    write(folder, "0001_slow.sql", "CREATE TABLE IF NOT EXISTS s (id INT);\nDO SLEEP(1);")
    write(folder, "0002_rows.sql", "INSERT INTO s VALUES (1);")
    results: list[object] = []

    def run() -> None:
        with mariadb.connect(dbname) as connection:
            try:
                results.append(len(migrate(connection, folder, lock_timeout=20)))
            except MigrationError as exc:  # pragma: no cover - reported by the assert
                results.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [0, 2]
    with mariadb.connect(dbname) as check, check.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM s")
        assert cur.fetchone()[0] == 1


def test_status_reports_applied_pending_changed_missing(conn, folder):
    states = migration_status(conn, folder)
    assert [(s.version, s.state) for s in states] == [(1, "pending"), (2, "pending"),
                                                      (10, "pending")]
    migrate(conn, folder)
    write(folder, "0011_fourth.sql", "CREATE TABLE d (id INT);")
    write(folder, "0002_second.sql", "-- edited\n")
    (folder / "0010_third.sql").unlink()
    states = {s.version: s for s in migration_status(conn, folder)}
    assert {v: s.state for v, s in states.items()} == {
        1: "applied", 2: "changed", 10: "missing", 11: "pending"}
    assert states[1].applied_at is not None and states[11].applied_at is None
    assert states[1].filename == "0001_first.sql"


def test_project_migrations_apply_cleanly(conn):
    applied = migrate(conn, MIGRATIONS)
    assert applied[0].filename == "0001_accounts.sql"
    assert "users" in tables(conn)
    assert migrate(conn, MIGRATIONS) == []


def test_works_with_a_dict_cursor_connection(mariadb, dbname, folder):
    import pymysql.cursors

    with mariadb.connect(dbname, cursorclass=pymysql.cursors.DictCursor) as connection:
        assert len(migrate(connection, folder)) == 3
        assert [s.state for s in migration_status(connection, folder)] == ["applied"] * 3
