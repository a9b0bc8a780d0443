"""`surveyctl db-migrate` through a real SSH tunnel (loopback sshd) to the test MariaDB."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.cli.test_config_cli import surveyctl
from tests.conftest import MIGRATIONS
from tests.services import MariaDBServer, free_port
from tests.sshd import SSHServer

pytestmark = pytest.mark.timeout(120)
REDIS_SECRET = "rp-TOPSECRET-redis"


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHServer]:
    """A real sshd on 127.0.0.1: the "vpn host" that opens the tunnel to MariaDB."""
    server = SSHServer(tmp_path_factory.mktemp("sshd")).start()
    yield server
    server.stop()


@pytest.fixture
def db_name(mariadb: MariaDBServer) -> Iterator[str]:
    """A fresh, empty database."""
    name = mariadb.create_database("mig")
    yield name
    mariadb.drop_database(name)


def write_topology(folder: Path, sshd: SSHServer, mariadb: MariaDBServer, database: str,
                   migrations: Path, password: str | None = None) -> Path:
    """A topology whose vpn host is the loopback sshd and whose database is the test MariaDB."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "known_hosts").write_text(sshd.known_hosts_line())
    (folder / "client.ovpn").write_text("remote 127.0.0.1 1194\n")
    (folder / ".env").write_text(f"SURVEY_DB_PASSWORD={password or mariadb.password}\n"
                                 f"SURVEY_REDIS_PASSWORD={REDIS_SECRET}\n")
    topology = {
        "cluster": "migtest",
        "ssh": {"user": sshd.user, "identity_file": str(sshd.client_key),
                "known_hosts": "known_hosts", "host_key_policy": "strict",
                "connect_timeout": 5},
        "hosts": [
            {"name": "lb", "address": "127.0.0.1", "roles": ["lb", "vpn", "redis"],
             "ssh": {"port": sshd.port}},
            # Never contacted by db-migrate: a port where nothing listens.
            {"name": "app1", "address": "127.0.0.1", "roles": ["app"],
             "ssh": {"port": free_port()}},
        ],
        "app": {"image": "migtest-app:latest"},
        "redis": {"password": "${SURVEY_REDIS_PASSWORD}"},
        "database": {"host": "127.0.0.1", "port": mariadb.port, "name": database,
                     "user": mariadb.user, "password": "${SURVEY_DB_PASSWORD}", "via": "vpn",
                     "migrations": str(migrations)},
        "vpn": {"client_config": "client.ovpn"},
    }
    path = folder / "surveyctl.yaml"
    path.write_text(yaml.safe_dump(topology))
    return path


def tables(mariadb: MariaDBServer, database: str) -> set[str]:
    with mariadb.connect(database) as conn, conn.cursor() as cur:
        cur.execute("SHOW TABLES")
        return {row[0] for row in cur.fetchall()}


def test_dry_run_then_apply_then_nothing_to_do(tmp_path: Path, sshd: SSHServer,
                                               mariadb: MariaDBServer, db_name: str) -> None:
    files = sorted(p.name for p in MIGRATIONS.glob("*.sql"))
    path = write_topology(tmp_path / "topo", sshd, mariadb, db_name, MIGRATIONS)

    status = surveyctl("db-migrate", "-c", str(path), "--status")
    assert status.code == 1, status.output
    for name in files:
        assert name in status.stdout
    assert status.stdout.count("│ pending │") == len(files)

    dry = surveyctl("db-migrate", "-c", str(path), "--dry-run")
    assert dry.code == 0, dry.output
    assert dry.stdout.splitlines() == [f"would apply  {name}" for name in files]
    assert "nothing changed" in dry.stderr
    assert tables(mariadb, db_name) == set()  # not even the bookkeeping table

    first = surveyctl("db-migrate", "-c", str(path))
    assert first.code == 0, first.output
    assert first.stdout.splitlines() == [f"applied  {name}" for name in files]
    assert "through lb" in first.stderr
    assert {"schema_migrations", "users"} <= tables(mariadb, db_name)

    second = surveyctl("db-migrate", "-c", str(path))
    assert second.code == 0, second.output
    assert second.stdout == ""
    assert f"nothing to do: all {len(files)} migrations already applied" in second.stderr

    status = surveyctl("db-migrate", "-c", str(path), "--status")
    assert status.code == 0, status.output
    assert status.stdout.count("│ applied │") == len(files)
    for run in (status, first, second, dry):
        assert mariadb.password not in run.output and REDIS_SECRET not in run.output


def test_failing_migration_names_the_file_and_exits_1(tmp_path: Path, sshd: SSHServer,
                                                      mariadb: MariaDBServer,
                                                      db_name: str) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, folder)
    (folder / "9001_broken.sql").write_text(
        "CREATE TABLE IF NOT EXISTS fine (id INT);\nALTER TABLE no_such_table ADD x INT;\n")
    path = write_topology(tmp_path / "topo", sshd, mariadb, db_name, folder)

    run = surveyctl("db-migrate", "-c", str(path))
    assert run.code == 1, run.output
    assert "9001_broken.sql: statement 2 of 2 failed" in run.stderr
    assert "no_such_table" in run.stderr  # the SQL error
    assert "Traceback" not in run.output
    # The files before it were applied and recorded; the broken one was not.
    status = surveyctl("db-migrate", "-c", str(path), "--status")
    assert status.code == 1
    line = next(line for line in status.stdout.splitlines() if "9001_broken.sql" in line)
    assert "pending" in line


def test_wrong_password_is_a_clear_error(tmp_path: Path, sshd: SSHServer,
                                         mariadb: MariaDBServer, db_name: str) -> None:
    wrong = "db-TOPSECRET-wrong"
    path = write_topology(tmp_path / "topo", sshd, mariadb, db_name, MIGRATIONS, password=wrong)
    run = surveyctl("db-migrate", "-c", str(path))
    assert run.code == 1, run.output
    assert "cannot log in to MariaDB 127.0.0.1" in run.stderr
    assert "(1045)" in run.stderr
    assert "database.user and database.password" in run.stderr
    assert wrong not in run.output


def test_status_and_dry_run_together_is_a_usage_error(tmp_path: Path, sshd: SSHServer,
                                                      mariadb: MariaDBServer,
                                                      db_name: str) -> None:
    path = write_topology(tmp_path / "topo", sshd, mariadb, db_name, MIGRATIONS)
    run = surveyctl("db-migrate", "-c", str(path), "--status", "--dry-run")
    assert run.code == 2
