"""Run INSIDE an app container by `surveyctl status` / `vpn check` (`python3 -` on stdin).

It uses the app's own settings (`survey_app.settings`, secrets from its `*_FILE`s) and
client libraries, so it proves that this container reaches MariaDB (through the DB proxy
and the VPN) and Redis. It prints one JSON line and never a secret; surveyctl does not
import this module.
"""

import json
import threading
import time

result = {}


def _error(exc):
    return f"{type(exc).__name__}: {exc}"[:300]


def _database(settings):
    import pymysql

    started = time.monotonic()
    conn = pymysql.connect(
        host=settings.db_host, port=settings.db_port, user=settings.db_user,
        password=settings.db_password, database=settings.db_name, connect_timeout=4,
        read_timeout=4, write_timeout=4,
    )
    try:
        result["db_connect_s"] = time.monotonic() - started
        with conn.cursor() as cur:
            started = time.monotonic()
            cur.execute("SELECT VERSION()")
            result["db_query_s"] = time.monotonic() - started
            result["db_version"] = cur.fetchone()[0]
            cur.execute("SELECT COUNT(*) FROM information_schema.tables "
                        "WHERE table_schema = DATABASE() AND table_name = 'schema_migrations'")
            if cur.fetchone()[0]:
                cur.execute("SELECT MAX(version) FROM schema_migrations")
                version = cur.fetchone()[0]
                result["migration"] = None if version is None else int(version)
    finally:
        conn.close()


def _redis(settings):
    import redis

    client = redis.Redis(host=settings.redis_host, port=settings.redis_port,
                         password=settings.redis_password, db=settings.redis_db,
                         socket_connect_timeout=3, socket_timeout=3)
    started = time.monotonic()
    client.ping()
    result["redis_ping_s"] = time.monotonic() - started
    client.close()


def _run(name, check, settings):
    try:
        check(settings)
    except Exception as exc:  # reported, never raised
        result[f"{name}_error"] = _error(exc)


def main():
    """Probe MariaDB and Redis in parallel; print the JSON line."""
    try:
        from survey_app.settings import Settings

        settings = Settings.from_env()
    except Exception as exc:
        result["error"] = "cannot read the app's settings: " + _error(exc)
    else:
        threads = [threading.Thread(target=_run, args=(name, check, settings))
                   for name, check in (("db", _database), ("redis", _redis))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
