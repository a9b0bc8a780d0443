"""The image's gunicorn config serving the app on the real services (no container)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.conftest import REPO_ROOT
from tests.services import free_port

GUNICORN_CONF = REPO_ROOT / "stacks" / "app" / "gunicorn.conf.py"


def _get(url: str):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_gunicorn_serves_the_app_with_secrets_from_files(mariadb, database, redis_server,
                                                         redis_db, tmp_path: Path):
    secrets = {"SURVEY_SECRET_KEY": "k" * 32, "SURVEY_DB_PASSWORD": mariadb.password,
               "SURVEY_REDIS_PASSWORD": redis_server.password}
    env = {key: value for key, value in os.environ.items() if not key.startswith("SURVEY_")}
    for name, value in secrets.items():
        path = tmp_path / name.lower()
        path.write_text(value + "\n")
        path.chmod(0o600)
        env[f"{name}_FILE"] = str(path)
    port = free_port()
    env.update(
        PYTHONPATH=str(REPO_ROOT / "app"), GUNICORN_BIND=f"127.0.0.1:{port}",
        GUNICORN_WORKERS="1", GUNICORN_THREADS="2",
        SURVEY_DB_PORT=str(mariadb.port), SURVEY_DB_NAME=database,
        SURVEY_DB_USER=mariadb.user, SURVEY_REDIS_PORT=str(redis_server.port),
        SURVEY_REDIS_DB=str(redis_db), SURVEY_SERVED_BY="gunicorn-test",
        SURVEY_TRUST_PROXY_HOPS="1",
    )
    gunicorn = Path(sys.executable).with_name("gunicorn")
    process = subprocess.Popen([str(gunicorn), "-c", str(GUNICORN_CONF),
                                "survey_app:create_app()"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                status, headers, _ = _get(base + "/healthz")
                break
            except OSError:
                assert process.poll() is None, process.stdout.read()
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)
        assert status == 200 and headers["X-Served-By"] == "gunicorn-test"
        status, _, body = _get(base + "/readyz")
        assert status == 200, body
        assert json.loads(body)["checks"] == {"mariadb": "ok", "redis": "ok"}
        status, headers, body = _get(base + "/login")
        assert status == 200 and "Entrar" in body.decode()
        assert "HttpOnly" in headers["Set-Cookie"]
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert '"GET /readyz HTTP/1.1" 200' in output  # access log on stdout
    assert mariadb.password not in output and redis_server.password not in output
