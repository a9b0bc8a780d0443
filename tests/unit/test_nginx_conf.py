"""nginx.conf rendering: exact text for the seed, `nginx -t` for every variant, and a live run."""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from survey_ctl.specs import render_nginx_conf
from tests.services import _binary, free_port
from tests.unit.test_specs import make_topology

# Debian's nginx and libnginx-mod-stream (the README's test command installs them).
NGINX_MODULES = "/usr/lib/nginx/modules"

SEED_CONF = """\
# nginx.conf of the surveyctl cluster "pesquisa", rendered by `surveyctl up`.
# Do not edit it on the host: the next `up` rewrites it and reloads Nginx gracefully.
# Source: survey_ctl/templates/nginx.conf.j2 (stacks/nginx/nginx.conf.j2 links to it).

# Debian's Nginx loads the stream module from here; images with it built in have no such files.
include /etc/nginx/modules-enabled/*.conf;

worker_processes auto;
pid /run/nginx.pid;
error_log /dev/stderr warn;

events {
    worker_connections 1024;
}

http {
    server_tokens off;
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65s;
    client_max_body_size 1m;

    # Keep a well-formed X-Request-ID from the client, else make one.
    map $http_x_request_id $surveyctl_request_id {
        default                     $request_id;
        "~^[A-Za-z0-9._-]{1,64}$"   $http_x_request_id;
    }

    # Security headers on every response: the app's own when it sent one, else Nginx's
    # (its own error pages included); an empty value adds nothing, so none is doubled.
    map $upstream_http_x_content_type_options $surveyctl_x_content_type_options {
        ""       "nosniff";
        default  "";
    }
    map $upstream_http_x_frame_options $surveyctl_x_frame_options {
        ""       "DENY";
        default  "";
    }
    map $upstream_http_referrer_policy $surveyctl_referrer_policy {
        ""       "same-origin";
        default  "";
    }
    map $upstream_http_permissions_policy $surveyctl_permissions_policy {
        ""       "camera=(), microphone=(), geolocation=()";
        default  "";
    }
    map $upstream_http_cross_origin_opener_policy $surveyctl_cross_origin_opener_policy {
        ""       "same-origin";
        default  "";
    }
    map $upstream_http_content_security_policy $surveyctl_content_security_policy {
        ""       "default-src 'none'; frame-ancestors 'none'";
        default  "";
    }

    # One line per request, with the backend that answered and how fast.
    log_format surveyctl '$remote_addr [$time_local] "$request" $status $body_bytes_sent '
                         'rid=$surveyctl_request_id upstream=$upstream_addr '
                         'upstream_status=$upstream_status request_time=$request_time '
                         'upstream_time=$upstream_response_time "$http_user_agent"';
    access_log /dev/stdout surveyctl;

    gzip on;
    gzip_vary on;
    gzip_proxied any;
    gzip_min_length 1024;
    gzip_types text/css text/plain text/xml application/javascript application/json
               image/svg+xml;

    # One failure skips a backend for 5 s (its requests go to the next one), then it
    # is tried again: a dead backend costs little, a restarted one is back soon.
    # `surveyctl deploy` adds a new backend before it takes the old one out.
    upstream pesquisa_app {
        # Failure counts shared by every worker: without a zone each worker keeps its
        # own, and one that saw both backends die keeps answering 502 ("no live
        # upstreams") after the others, and `surveyctl up`, have seen them come back.
        zone pesquisa_app 64k;
        least_conn;
        server 192.168.56.11:8000 max_fails=1 fail_timeout=5s;
        server 192.168.56.12:8000 max_fails=1 fail_timeout=5s;
        keepalive 32;
        # Under gunicorn's keepalive (5 s): Nginx, not the app, closes idle connections.
        keepalive_timeout 4s;
    }

    server {
        listen 80 default_server;
        server_name _;

        # Security headers (maps above). No HSTS: no TLS here.
        add_header X-Content-Type-Options $surveyctl_x_content_type_options always;
        add_header X-Frame-Options $surveyctl_x_frame_options always;
        add_header Referrer-Policy $surveyctl_referrer_policy always;
        add_header Permissions-Policy $surveyctl_permissions_policy always;
        add_header Cross-Origin-Opener-Policy $surveyctl_cross_origin_opener_policy always;
        add_header Content-Security-Policy $surveyctl_content_security_policy always;
        add_header X-Request-ID $surveyctl_request_id always;

        location = /nginx-health {
            access_log off;
            default_type text/plain;
            return 200 "ok\\n";
        }

        # How every location below reaches the app backends.
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $host;
        # Exactly one proxy hop: overwrite what the client sent, never append to it.
        proxy_set_header X-Forwarded-For $remote_addr;
        proxy_set_header X-Real-IP $remote_addr;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header X-Forwarded-Host $host;
        proxy_set_header X-Request-ID $surveyctl_request_id;
        proxy_connect_timeout 2s;
        # Longer than the app's own MariaDB timeout (10 s), so a slow shared
        # dependency ends in the app's 503 page: a read timeout here would count
        # against every backend at once and mark them all down.
        proxy_read_timeout 35s;
        # A failed backend passes the request to the next one. Only idempotent
        # requests are retried: without `non_idempotent` in this list, Nginx never
        # resends a POST, PATCH or LOCK to a second backend (/survey below does). Not
        # http_503: that is the app saying Redis or MariaDB is down (the same for every
        # backend), and counting it as a failure marks every backend down.
        proxy_next_upstream error timeout http_502 http_504;
        proxy_next_upstream_tries 2;
        proxy_next_upstream_timeout 10s;

        location / {
            proxy_pass http://pesquisa_app;
        }

        # The answer form: storing an answer is an upsert of the account's one response
        # (its choices replaced in the same transaction), so a POST that a dying backend
        # dropped is resent to the next one: a repeat stores the same answer again.
        location = /survey {
            proxy_pass http://pesquisa_app;
            proxy_next_upstream error timeout http_502 http_504 non_idempotent;
        }
    }
}

# MariaDB through the VPN tunnel of this host, for the app hosts only.
stream {
    log_format surveyctl_db '$remote_addr [$time_local] $status $bytes_sent $bytes_received '
                            '$session_time upstream=$upstream_addr';
    access_log /dev/stdout surveyctl_db;

    server {
        listen 3306;
        allow 192.168.56.11;
        allow 192.168.56.12;
        deny all;
        proxy_pass 10.8.0.1:3306;
        proxy_connect_timeout 5s;
        proxy_timeout 1h;
    }
}
"""


def test_seed_conf_exact(tmp_path: Path) -> None:
    assert render_nginx_conf(make_topology(tmp_path)) == SEED_CONF


def test_round_robin_has_no_directive_and_tries_cap(tmp_path: Path) -> None:
    def change(data: dict) -> None:
        data["lb"]["algorithm"] = "round_robin"
        data["app"]["replicas"] = 2

    conf = render_nginx_conf(make_topology(tmp_path, change))
    upstream = conf[conf.index("    upstream"):conf.index("    server {")]
    lines = [line.strip() for line in upstream.splitlines()]
    assert [line for line in lines if line and not line.startswith("#")] == [
        "upstream pesquisa_app {",
        "zone pesquisa_app 64k;",
        "server 192.168.56.11:8000 max_fails=1 fail_timeout=5s;",
        "server 192.168.56.11:8001 max_fails=1 fail_timeout=5s;",
        "server 192.168.56.12:8000 max_fails=1 fail_timeout=5s;",
        "server 192.168.56.12:8001 max_fails=1 fail_timeout=5s;",
        "keepalive 32;",
        "keepalive_timeout 4s;",
        "}",
    ]
    assert "proxy_next_upstream_tries 3;" in conf


def test_http_only_and_stream_only(tmp_path: Path) -> None:
    topo = make_topology(tmp_path)
    http_only = render_nginx_conf(topo, stream=False)
    assert http_only == SEED_CONF[:SEED_CONF.index("\n# MariaDB")]
    stream_only = render_nginx_conf(topo, http=False, stream=True)
    assert "http {" not in stream_only
    assert stream_only.endswith(SEED_CONF[SEED_CONF.index("\n# MariaDB"):])


def _nginx_argv(conf: str, tmp_path: Path) -> list[str]:
    """`nginx -c FILE -p PREFIX` for `conf` written to tmp_path; the prefix sees Debian's
    modules (modules-enabled/*.conf load them relative to the prefix)."""
    prefix = tmp_path / "prefix"
    prefix.mkdir(exist_ok=True)
    if not (prefix / "modules").exists():
        (prefix / "modules").symlink_to(NGINX_MODULES)
    path = tmp_path / "nginx.conf"
    path.write_text(conf)
    return [_binary("nginx"), "-c", str(path), "-p", f"{prefix}/"]


def nginx_test(conf: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """`nginx -t` on `conf`."""
    return subprocess.run([*_nginx_argv(conf, tmp_path), "-t"], capture_output=True,
                          text=True, timeout=30)


def start_nginx(conf: str, tmp_path: Path) -> subprocess.Popen:
    """A foreground nginx running `conf`, its pid file in tmp_path."""
    conf = conf.replace("pid /run/nginx.pid;", f"pid {tmp_path}/nginx.pid;")
    return subprocess.Popen([*_nginx_argv(conf, tmp_path), "-g", "daemon off;"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.mark.parametrize("algorithm", ["round_robin", "least_conn", "ip_hash"])
@pytest.mark.parametrize("via", ["vpn", "direct"])
def test_nginx_accepts_the_config(tmp_path: Path, algorithm: str, via: str) -> None:
    def change(data: dict) -> None:
        data["lb"]["algorithm"] = algorithm
        data["app"]["replicas"] = 2
        data["database"]["via"] = via

    conf = render_nginx_conf(make_topology(tmp_path, change))
    assert ("stream {" in conf) == (via == "vpn")
    checked = nginx_test(conf, tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert "syntax is ok" in checked.stderr


def test_nginx_accepts_the_stream_only_config(tmp_path: Path) -> None:
    conf = render_nginx_conf(make_topology(tmp_path), http=False, stream=True)
    checked = nginx_test(conf, tmp_path)
    assert checked.returncode == 0, checked.stderr


# ---------------------------------------------------------------- a live Nginx


class _Backend(BaseHTTPRequestHandler):
    """Answers with the headers it got; `status` 503 plays an overloaded backend."""

    status = 200
    name = "b"
    seen: list[tuple[str, str, dict[str, str]]]

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.seen.append((self.command, self.path, dict(self.headers)))
        body = json.dumps(dict(self.headers)).encode()
        self.send_response(self.status)
        self.send_header("X-Served-By", self.name)
        self.send_header("X-Frame-Options", "SAMEORIGIN")  # the app's own header wins
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


def _backend(port: int, name: str, status: int) -> tuple[ThreadingHTTPServer, list]:
    seen: list = []
    handler = type(name, (_Backend,), {"status": status, "name": name, "seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, seen


def _consecutive_free_ports() -> int:
    for _ in range(50):
        port = free_port()
        if port < 65535 and _free(port + 1):
            return port
    raise RuntimeError("no two consecutive free ports")


def _free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.mark.timeout(60)
def test_live_nginx_headers_retries_and_no_post_retry(tmp_path: Path) -> None:
    app_port, listen = _consecutive_free_ports(), free_port()

    def local(data: dict) -> None:
        data["hosts"] = [
            {"name": "lb", "address": "127.0.0.1", "roles": ["lb", "redis"]},
            {"name": "app1", "address": "127.0.0.1", "roles": ["app"], "ssh": {"port": 2222}},
        ]
        data["app"].update(replicas=2, port=app_port)
        data["lb"]["algorithm"] = "round_robin"
        data["database"]["via"] = "direct"
        del data["vpn"]

    conf = render_nginx_conf(make_topology(tmp_path / "topo", local))
    conf = conf.replace("listen 80 default_server;", f"listen 127.0.0.1:{listen} default_server;")
    conf = conf.replace("access_log /dev/stdout surveyctl;",
                        f"access_log {tmp_path}/access.log surveyctl;")
    good, good_seen = _backend(app_port, "good", 200)
    bad, bad_seen = _backend(app_port + 1, "bad", 502)
    nginx = start_nginx(conf, tmp_path)
    try:
        def request(method: str, path: str = "/", headers: dict | None = None):
            deadline = time.monotonic() + 10
            while True:
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", listen, timeout=5)
                    conn.request(method, path, body=b"x" if method == "POST" else None,
                                 headers=headers or {})
                    response = conn.getresponse()
                    return response, response.read()
                except ConnectionRefusedError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)

        health, body = request("GET", "/nginx-health")
        assert (health.status, body) == (200, b"ok\n")

        for _ in range(4):  # GETs that meet the failing backend go on to the good one
            response, body = request("GET", "/survey", {"X-Forwarded-For": "6.6.6.6",
                                                        "X-Request-ID": "req-1"})
            assert response.status == 200 and response.getheader("X-Served-By") == "good"
            got = json.loads(body)
            assert got["X-Forwarded-For"] == "127.0.0.1"  # overwritten: exactly one hop
            assert (got["X-Request-ID"], got["X-Forwarded-Proto"]) == ("req-1", "http")
            assert response.getheader("X-Content-Type-Options") == "nosniff"
            # the backend's header is kept, never doubled; Nginx fills in the missing ones
            assert response.headers.get_all("X-Frame-Options") == ["SAMEORIGIN"]
            assert response.getheader("Server") == "nginx"  # server_tokens off
        own = request("GET", "/nginx-health")[0]  # Nginx's own answer gets every header
        assert own.headers.get_all("X-Frame-Options") == ["DENY"]
        csp = own.getheader("Content-Security-Policy")
        assert csp == "default-src 'none'; frame-ancestors 'none'"
        generated = request("GET", "/", {"X-Request-ID": "bad id; drop"})[0]
        assert re.fullmatch(r"[0-9a-f]{32}", generated.getheader("X-Request-ID"))

        good_seen.clear()
        bad_seen.clear()
        statuses = [request("POST", "/answer")[0].status for _ in range(2)]
        posts = [s for s in good_seen + bad_seen if s[0] == "POST"]
        assert len(posts) == 2  # each POST reached exactly one backend: never retried
        assert statuses.count(502) == len([p for p in bad_seen if p[0] == "POST"])
        # An answer (POST /survey, an upsert per account) is resent to the next backend.
        # After fail_timeout (5 s, counted by Nginx in whole seconds: wait past 6) the
        # failing backend is tried again; each worker keeps its own round-robin state, so
        # a few POSTs make sure one meets it.
        time.sleep(6.5)
        for _ in range(8):
            response = request("POST", "/survey")[0]
            assert (response.status, response.getheader("X-Served-By")) == (200, "good")
        assert [p[1] for p in bad_seen if p[0] == "POST"].count("/survey") >= 1
        log = (tmp_path / "access.log").read_text()
        assert re.search(r"upstream=127\.0\.0\.1:\d+, 127\.0\.0\.1:\d+ "
                         r"upstream_status=502, 200 request_time=", log)
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)
        good.shutdown()
        bad.shutdown()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("client", ["127.0.0.1", "127.0.0.2"])
def test_live_stream_proxy_to_mariadb(tmp_path: Path, mariadb, client: str) -> None:
    import pymysql

    listen = free_port()

    def local(data: dict) -> None:
        data["hosts"] = [
            {"name": "lb", "address": "127.0.0.1", "roles": ["lb", "redis", "vpn"]},
            {"name": "app1", "address": client, "roles": ["app"], "ssh": {"port": 2222}},
        ]
        data["database"].update(host="127.0.0.1", port=mariadb.port)

    conf = render_nginx_conf(make_topology(tmp_path / "topo", local), http=False, stream=True)
    conf = conf.replace(f"listen {mariadb.port};", f"listen 127.0.0.1:{listen};")
    nginx = start_nginx(conf, tmp_path)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                db = pymysql.connect(host="127.0.0.1", port=listen, user=mariadb.user,
                                     password=mariadb.password, connect_timeout=3)
                break
            except pymysql.err.OperationalError as exc:
                refused = "Connection refused" in str(exc) or "111" in str(exc)
                if refused and time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                assert client == "127.0.0.2", exc  # denied: not an app host address
                return
        assert client == "127.0.0.1", "a client that is no app host got through"
        with db, db.cursor() as cur:
            cur.execute("SELECT 6 * 7")
            assert cur.fetchone() == (42,)
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)
