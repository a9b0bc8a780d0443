"""Session-wide real services (MariaDB, Redis) and the app fixtures built on them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services import MariaDBServer, RedisServer

REPO_ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS = REPO_ROOT / "app" / "migrations"
# Set by the README's test command (and so by CI): a test that skips is a failure there,
# because a missing service or tool must not pass silently as "skipped".
NO_SKIP = os.environ.get("SURVEYCTL_TEST_NO_SKIP") == "1"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Under SURVEYCTL_TEST_NO_SKIP=1, report every skip as a failure."""
    outcome = yield
    report = outcome.get_result()
    if NO_SKIP and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped, which the full test command does not allow: {report.longrepr}"


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDBServer]:
    """One real MariaDB server for the whole run."""
    server = MariaDBServer(tmp_path_factory.mktemp("mariadb")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real Redis server for the whole run."""
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def fast_password_hashing(request, monkeypatch):
    """App tests hash with cheap argon2id parameters (the real ones cost ~0.15 s a hash).

    A test that requests the `real_hasher` fixture keeps the production parameters.
    """
    if "tests/app/" not in request.node.path.as_posix() or "real_hasher" in request.fixturenames:
        return
    from argon2 import PasswordHasher

    from survey_app.auth import passwords

    monkeypatch.setattr(passwords, "hasher",
                        PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
def real_hasher():
    """Marker fixture: keep the production argon2 parameters in this test."""


@pytest.fixture
def database(mariadb: MariaDBServer) -> Iterator[str]:
    """A fresh database for one test, with every migration applied."""
    from survey_ctl.migrate import migrate

    name = mariadb.create_database()
    with mariadb.connect(name) as conn:
        migrate(conn, MIGRATIONS)
    yield name
    mariadb.drop_database(name)


@pytest.fixture
def redis_db(redis_server: RedisServer) -> Iterator[int]:
    """Redis logical database 1, emptied before and after the test."""
    client = redis_server.client(1)
    client.flushdb()
    yield 1
    client.flushdb()


def make_settings(mariadb: MariaDBServer, database: str, redis_server: RedisServer,
                  redis_db: int = 1, **overrides):
    """Settings pointing the app at the test servers."""
    from survey_app.settings import Settings

    values = dict(
        secret_key="test-secret-key-0123456789abcdef",
        db_host="127.0.0.1", db_port=mariadb.port, db_name=database,
        db_user=mariadb.user, db_password=mariadb.password,
        redis_host="127.0.0.1", redis_port=redis_server.port,
        redis_password=redis_server.password, redis_db=redis_db,
        served_by="test-backend",
    )
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def app_settings(mariadb, database, redis_server, redis_db):
    """Settings for one test's app."""
    return make_settings(mariadb, database, redis_server, redis_db)


@pytest.fixture
def app(app_settings):
    """A configured app on the real servers (CSRF on, as in production)."""
    from survey_app import create_app

    return create_app(app_settings, TESTING=True)


@pytest.fixture
def make_app(mariadb, database, redis_server, redis_db):
    """Build more apps on this test's database and Redis: `make_app(served_by="b", ...)`.

    Keyword arguments that are Settings fields override them; the others are Flask config.
    """
    from dataclasses import fields

    from survey_app import create_app

    names = {f.name for f in fields(make_settings(mariadb, database, redis_server))}

    def build(**overrides):
        settings = {k: v for k, v in overrides.items() if k in names}
        config = {k: v for k, v in overrides.items() if k not in names}
        config.setdefault("TESTING", True)
        return create_app(make_settings(mariadb, database, redis_server, redis_db, **settings),
                          **config)

    return build


@pytest.fixture
def client(app):
    """A test client of `app`."""
    return app.test_client()
