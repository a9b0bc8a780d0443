"""`surveyctl status` and `vpn check` against real services, without the lab.

One "host" is a loopback sshd on this machine (with the local Docker Engine) holding
every role; Redis and MariaDB are the test servers; a small HTTP server plays Nginx and
the backend. The cluster's containers do not exist, so the verdict is down; everything
that can be observed is checked for real, and no secret reaches the output.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from tests.cli.test_config_cli import surveyctl
from tests.services import MariaDBServer, RedisServer, free_port
from tests.sshd import SSHServer

pytestmark = pytest.mark.timeout(120)
SECRET_KEY = "sk-TOPSECRET-flask-key-0123456789"


def _docker_works() -> bool:
    docker = shutil.which("docker")
    return bool(docker) and subprocess.run([docker, "info"], capture_output=True,
                                           timeout=20).returncode == 0


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"status":"ok"}' if self.path == "/healthz" else b"no"
        self.send_response(200 if self.path == "/healthz" else 404)
        self.send_header("X-Served-By", "fake-backend")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def http_port() -> Iterator[int]:
    """An HTTP server answering /healthz with X-Served-By: fake-backend."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHServer]:
    """A real sshd on 127.0.0.1."""
    server = SSHServer(tmp_path_factory.mktemp("sshd")).start()
    yield server
    server.stop()


@pytest.fixture
def topology(tmp_path: Path, sshd: SSHServer, mariadb: MariaDBServer,
             redis_server: RedisServer, http_port: int) -> Path:
    """A one-host topology on this machine; the VPN "interface" is lo."""
    folder = tmp_path / "topo"
    folder.mkdir()
    (folder / "known_hosts").write_text(sshd.known_hosts_line())
    (folder / "client.ovpn").write_text("remote 127.0.0.1 1194\n")
    (folder / ".env").write_text(f"SURVEY_DB_PASSWORD={mariadb.password}\n"
                                 f"SURVEY_REDIS_PASSWORD={redis_server.password}\n"
                                 f"SURVEY_SECRET_KEY={SECRET_KEY}\n")
    data = {
        "cluster": f"stt{free_port()}",
        "ssh": {"user": sshd.user, "identity_file": str(sshd.client_key),
                "known_hosts": "known_hosts", "host_key_policy": "strict", "connect_timeout": 5},
        "hosts": [{"name": "h1", "address": "127.0.0.1", "roles": ["lb", "vpn", "redis", "app"],
                   "ssh": {"port": sshd.port}}],
        "app": {"image": "stt-app:latest", "port": http_port,
                "env": {"SURVEY_SECRET_KEY": "${SURVEY_SECRET_KEY}"}},
        "lb": {"port": http_port},
        "redis": {"port": redis_server.port, "password": "${SURVEY_REDIS_PASSWORD}"},
        "database": {"host": "127.0.0.1", "port": mariadb.port, "name": "survey",
                     "user": mariadb.user, "password": "${SURVEY_DB_PASSWORD}", "via": "vpn"},
        "vpn": {"client_config": "client.ovpn", "interface": "lo"},
    }
    path = folder / "surveyctl.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def secrets(mariadb: MariaDBServer, redis_server: RedisServer) -> list[str]:
    return [mariadb.password, redis_server.password, SECRET_KEY]


@pytest.mark.skipif(not _docker_works(), reason="needs the local Docker Engine")
def test_status_json_observes_everything_and_leaks_nothing(
        topology: Path, mariadb: MariaDBServer, redis_server: RedisServer) -> None:
    run = surveyctl("status", "-c", str(topology), "--json")
    assert run.code == 1, run.output
    data = json.loads(run.stdout)
    for secret in secrets(mariadb, redis_server):
        assert secret not in run.output
    assert data["verdict"] == "down"
    checks = {(c["section"], c["name"]): c for c in data["checks"]}
    assert checks[("hosts", "h1")]["level"] == "ok"
    assert data["hosts"][0]["docker_version"]
    assert data["hosts"][0]["connect_s"] > 0
    cluster = data["cluster"]
    missing = {c["name"] for c in data["containers"] if c["state"] == "missing"}
    assert missing == {f"{cluster}-redis", f"{cluster}-app-1", f"{cluster}-vpn",
                       f"{cluster}-nginx"}
    # The balancer and backend probes went from the host to the HTTP server.
    assert checks[("balancer", "nginx")]["level"] == "ok"
    assert data["balancer"]["backends"][0]["direct"]["served_by"] == "fake-backend"
    # Redis AUTH + PING through the host, with the password only inside SSH.
    assert checks[("redis", f"server 127.0.0.1:{redis_server.port}")]["level"] == "ok"
    assert data["redis"]["version"]
    # The app container does not exist: both of its probes say so.
    app = checks[("database", f"from h1/{cluster}-app-1")]
    assert app["level"] == "down"
    assert "No such container" in app["reason"]
    # The VPN chain on the host: lo is up, the route uses it, MariaDB greets.
    assert checks[("vpn", "interface lo")]["level"] == "ok"
    assert checks[("vpn", "route to 127.0.0.1")]["reason"].startswith("dev lo")
    greeting = checks[("vpn", f"MariaDB 127.0.0.1:{mariadb.port} from h1")]
    assert greeting["level"] == "ok", greeting
    assert "MariaDB" in data["vpn"]["db_server"]


@pytest.mark.skipif(not _docker_works(), reason="needs the local Docker Engine")
def test_status_dashboard_and_vpn_check(topology: Path, mariadb: MariaDBServer,
                                        redis_server: RedisServer, tmp_path: Path) -> None:
    picture = tmp_path / "dashboard.svg"
    run = surveyctl("status", "-c", str(topology), "--svg", str(picture))
    assert run.code == 1, run.output
    svg = picture.read_text()
    assert svg.startswith("<svg") and "surveyctl&#160;status" in svg and "DOWN" in svg
    assert "✗ " in run.stdout and ": DOWN — " in run.stdout
    assert "hint: `surveyctl up` creates it" in run.stdout
    check = surveyctl("vpn", "check", "-c", str(topology))
    assert check.code == 1, check.output
    lines = check.stdout.splitlines()
    assert lines[0].startswith("✗ client container stt")
    assert lines[1] == "✓ interface lo: up, 127.0.0.1/8"
    assert "first broken link: client container" in check.stdout
    assert "hint: start it with `surveyctl vpn up`" in check.stdout
    for secret in secrets(mariadb, redis_server):
        assert secret not in run.output + check.output + svg


def test_unreachable_host_is_down_fast(topology: Path) -> None:
    data = yaml.safe_load(topology.read_text())
    data["hosts"][0]["ssh"]["port"] = free_port()  # nothing listens there
    topology.write_text(yaml.safe_dump(data))
    run = surveyctl("status", "-c", str(topology), "--json")
    assert run.code == 1, run.output
    document = json.loads(run.stdout)
    assert document["verdict"] == "down"
    assert document["problems"][0]["section"] == "hosts"
    assert "connection refused" in document["problems"][0]["reason"]
    assert document["containers"] == []


def test_silent_host_is_down_within_the_status_timeout(topology: Path) -> None:
    """A port that takes the TCP connection but never speaks SSH (a frozen host): with
    --timeout 1, status gives up on it after about 1 s, not the topology's 5 s."""
    import socket
    import time

    silent = socket.create_server(("127.0.0.1", 0))  # listens, never accepts nor answers
    try:
        data = yaml.safe_load(topology.read_text())
        data["hosts"][0]["ssh"]["port"] = silent.getsockname()[1]
        topology.write_text(yaml.safe_dump(data))
        started = time.monotonic()
        run = surveyctl("status", "-c", str(topology), "--json", "--timeout", "1")
        seconds = time.monotonic() - started
    finally:
        silent.close()
    assert run.code == 1, run.output
    document = json.loads(run.stdout)
    assert document["verdict"] == "down"
    assert document["problems"][0]["section"] == "hosts"
    assert seconds < 4.5, f"status took {seconds:.1f} s: the 1 s cap was not applied"


def test_topology_error_exits_2(tmp_path: Path) -> None:
    run = surveyctl("status", "-c", str(tmp_path / "missing.yaml"))
    assert run.code == 2


class _FakeProber:
    """Stands in for `Prober`: healthy snapshots, counted (pure logic of --watch)."""

    def __init__(self, topology, **_) -> None:
        self.topo = topology
        self.taken = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass

    def snapshot(self, **_):
        from tests.unit.test_checks_snapshot import healthy_snapshot

        self.taken += 1
        return healthy_snapshot()


@pytest.fixture
def fake_watch(monkeypatch: pytest.MonkeyPatch):
    """--watch with a fake prober; the second sleep is a Ctrl-C."""
    from survey_ctl.checks import probes
    from survey_ctl.cli import status_cmd

    monkeypatch.setattr(probes, "Prober", _FakeProber)
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(status_cmd.time, "sleep", sleep)
    return sleeps


def test_watch_off_a_terminal_prints_plain_refreshes(topology: Path, fake_watch) -> None:
    run = surveyctl("status", "-c", str(topology), "--watch", "--interval", "3")
    assert run.code == 0, run.output
    assert fake_watch == [3.0, 3.0]
    assert run.stdout.count("✓ pesquisa: healthy — all 20 checks ok") == 2
    assert run.stdout.count("\n---") == 2  # a rule after each refresh
    assert "\x1b[" not in run.stdout  # no cursor movement or colour off a terminal


def test_watch_json_prints_one_document_per_line(topology: Path, fake_watch) -> None:
    run = surveyctl("status", "-c", str(topology), "--watch", "--json")
    assert run.code == 0, run.output
    lines = run.stdout.splitlines()
    assert len(lines) == 2
    assert [json.loads(line)["verdict"] for line in lines] == ["ok", "ok"]


VPN_IMAGE = "surveyctl-lab/openvpn:latest"  # one of the lab's images


@pytest.fixture(scope="module")
def lab_images() -> None:
    """The lab's images on this machine's engine (built if missing, as `lab up` does)."""
    if not _docker_works():
        pytest.skip("needs the local Docker Engine")
    from survey_ctl.lab.lifecycle import build_images

    build_images()


# The timeout covers the fixture too: a cold build of the lab images takes minutes.
@pytest.mark.timeout(900)
@pytest.mark.usefixtures("lab_images")
def test_vpn_up_creates_a_missing_client_then_down_stops_it(topology: Path) -> None:
    """The create path of `vpn up` (the executor's code) on a real engine; the profile is
    no real one, so the tunnel never comes up and `vpn up` says so."""
    data = yaml.safe_load(topology.read_text())
    data["vpn"]["image"] = VPN_IMAGE
    topology.write_text(yaml.safe_dump(data))
    name = f"{data['cluster']}-vpn"
    try:
        up = surveyctl("vpn", "up", "-c", str(topology), "--wait", "2")
        assert up.code == 1, up.output
        assert f"creating {name} on h1" in up.stderr
        assert "the tunnel is not up after 2 s" in up.stderr
        inspect = subprocess.run(["docker", "inspect", "--format", "{{.HostConfig.NetworkMode}}",
                                  name], capture_output=True, text=True)
        assert inspect.stdout.strip() == "host"
        down = surveyctl("vpn", "down", "-c", str(topology))
        assert down.code == 0, down.output
        assert name in down.stderr
        state = subprocess.run(["docker", "inspect", "--format", "{{.State.Status}}", name],
                               capture_output=True, text=True).stdout.strip()
        assert state in ("exited", "created")
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
