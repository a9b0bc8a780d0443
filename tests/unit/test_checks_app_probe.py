"""app_probe.py (run inside app containers) against the real test MariaDB and Redis."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from survey_ctl.checks.probes import app_probe_source
from tests.services import MariaDBServer, RedisServer, free_port

APP_DIR = Path(__file__).resolve().parents[2] / "app"


def probe(tmp_path: Path, mariadb: MariaDBServer, redis_server: RedisServer, database: str,
          redis_password: str | None = None, db_port: int | None = None) -> dict:
    """Run the probe as an app container would: settings from SURVEY_* and *_FILE."""
    secrets = tmp_path / "secrets"
    secrets.mkdir(exist_ok=True)
    (secrets / "db").write_text(mariadb.password + "\n")
    (secrets / "redis").write_text(redis_password or redis_server.password)
    (secrets / "key").write_text("k" * 32)
    env = {
        "PATH": "/usr/bin:/bin", "PYTHONPATH": str(APP_DIR),
        "SURVEY_SECRET_KEY_FILE": str(secrets / "key"),
        "SURVEY_DB_HOST": "127.0.0.1", "SURVEY_DB_PORT": str(db_port or mariadb.port),
        "SURVEY_DB_NAME": database, "SURVEY_DB_USER": mariadb.user,
        "SURVEY_DB_PASSWORD_FILE": str(secrets / "db"),
        "SURVEY_REDIS_HOST": "127.0.0.1", "SURVEY_REDIS_PORT": str(redis_server.port),
        "SURVEY_REDIS_PASSWORD_FILE": str(secrets / "redis"),
    }
    done = subprocess.run([sys.executable, "-"], input=app_probe_source(), env=env,
                          capture_output=True, timeout=60, check=True)
    assert done.stderr == b""
    [line] = done.stdout.decode().splitlines()
    return json.loads(line)


def test_healthy_app_sees_its_migration(tmp_path: Path, mariadb: MariaDBServer,
                                        redis_server: RedisServer, database: str) -> None:
    result = probe(tmp_path, mariadb, redis_server, database)
    assert set(result) == {"db_connect_s", "db_query_s", "db_version", "migration",
                           "redis_ping_s"}
    assert result["migration"] == 2
    assert "MariaDB" in result["db_version"]
    assert result["redis_ping_s"] > 0


def test_empty_database_and_wrong_redis_password(tmp_path: Path, mariadb: MariaDBServer,
                                                 redis_server: RedisServer) -> None:
    empty = mariadb.create_database("probe")
    try:
        result = probe(tmp_path, mariadb, redis_server, empty, redis_password="wrong-secret")
    finally:
        mariadb.drop_database(empty)
    assert result["migration"] is None
    assert result["redis_error"].startswith("Redis answered: WRONGPASS")
    assert "wrong-secret" not in json.dumps(result)


def test_unreachable_database(tmp_path: Path, mariadb: MariaDBServer,
                              redis_server: RedisServer, database: str) -> None:
    result = probe(tmp_path, mariadb, redis_server, database, db_port=free_port())
    assert result["db_error"].startswith("OperationalError: (2003,")
    assert "db_query_s" not in result
    assert result["redis_ping_s"] > 0
    assert mariadb.password not in json.dumps(result)
