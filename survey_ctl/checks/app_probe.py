"""Run INSIDE an app container by `surveyctl status` / `vpn check` (`python3 -` on stdin).

It reads the app's own settings (`survey_app/settings.py`, secrets from its `*_FILE`s)
and proves that this container reaches MariaDB (PyMySQL, the app's driver, through the
DB proxy and the VPN) and Redis (AUTH + PING over a socket). It prints one JSON line
and never a secret; surveyctl does not import this module. Kept fast: the settings
module is loaded alone (importing the `survey_app` package would load Flask), and
redis-py is not imported (it costs ~0.2 s).
"""

import importlib.util
import json
import os
import socket
import sys
import threading
import time

result = {}


def _error(exc):
    text = str(exc) if type(exc) is RuntimeError else f"{type(exc).__name__}: {exc}"
    return text[:300]


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
            try:  # one round trip in the usual case
                cur.execute("SELECT VERSION(), MAX(version) FROM schema_migrations")
            except pymysql.err.ProgrammingError as exc:
                if exc.args[0] != 1146:  # ER_NO_SUCH_TABLE: no migration applied yet
                    raise
                cur.execute("SELECT VERSION(), NULL")
            result["db_query_s"] = time.monotonic() - started
            version, migration = cur.fetchone()
            result["db_version"] = version
            result["migration"] = None if migration is None else int(migration)
    finally:
        conn.close()


def _resp(*words):
    parts = [b"*%d\r\n" % len(words)]
    for word in words:
        data = str(word).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def _redis(settings):
    commands = [("AUTH", settings.redis_password)] if settings.redis_password else []
    commands.append(("PING",))
    started = time.monotonic()
    with socket.create_connection((settings.redis_host, settings.redis_port), timeout=3) as sock:
        sock.sendall(b"".join(_resp(*words) for words in commands))
        reply = b""
        while reply.count(b"\r\n") < len(commands):
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    elapsed = time.monotonic() - started
    lines = reply.split(b"\r\n")[:len(commands)]
    for line in lines:
        if line.startswith(b"-"):
            raise RuntimeError("Redis answered: " + line[1:].decode("utf-8", "replace"))
    if not lines or lines[-1] != b"+PONG":
        raise RuntimeError("no PONG from Redis")
    result["redis_ping_s"] = elapsed


def _settings():
    """`survey_app.settings.Settings.from_env()`, without importing the package."""
    package = importlib.util.find_spec("survey_app")
    path = os.path.join(package.submodule_search_locations[0], "settings.py")
    spec = importlib.util.spec_from_file_location("_surveyctl_app_settings", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module.Settings.from_env()


def _run(name, check, settings):
    try:
        check(settings)
    except Exception as exc:  # reported, never raised
        result[f"{name}_error"] = _error(exc)


def main():
    """Probe MariaDB and Redis in parallel; print the JSON line."""
    try:
        settings = _settings()
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
