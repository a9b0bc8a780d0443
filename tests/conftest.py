"""Session-wide real services (MariaDB, Redis) and the app fixtures built on them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services import MariaDBServer, RedisServer

REPO_ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS = REPO_ROOT / "app" / "migrations"


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
def client(app):
    """A test client of `app`."""
    return app.test_client()
