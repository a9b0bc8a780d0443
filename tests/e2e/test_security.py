"""Security checks on the converged lab cluster, beyond test_cluster.py's (secrets in
`docker inspect`/`ps`/state files of the three VMs, the firewall's peers).

Secrets (the lab's .env values) appear nowhere: `ps` on every host including the cloud
host, container logs, `status --json`, `audit`. MariaDB only through the VPN; Redis and
the app/proxy ports not reachable from a non-app address; only the balancer's port is
published to everyone; security headers on every answer, Nginx's own errors included.
"""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.conftest import ADDRESSES, ClusterUp, Lab, surveyctl
from tests.e2e.test_cluster import BASE, _config, _reachable, _secrets

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

HEADERS = ("X-Frame-Options", "Referrer-Policy", "Content-Security-Policy",
           "Permissions-Policy")


def test_no_secret_in_ps_logs_status_or_audit(lab: Lab, cluster_up: ClusterUp) -> None:
    secrets = _secrets(lab)
    for host in ("lb", "app1", "app2", "cloud"):
        shown = lab.ssh(host, "ps -eo args", user="root")
        assert shown.returncode == 0, shown.stderr
        for secret in secrets:
            assert secret.encode() not in shown.stdout, host
    for command in (["logs", "--tail", "2000"], ["status", "--json"],
                    ["audit", "--tail", "500", "--json"]):
        done = surveyctl(*command, *_config(lab), timeout=120)
        for secret in secrets:
            assert secret not in done.stdout + done.stderr, command


def test_container_argv_and_env_hold_no_secret(lab: Lab, cluster_up: ClusterUp) -> None:
    secrets = _secrets(lab)
    template = "{{json .Path}} {{json .Args}} {{json .Config.Cmd}} " \
               "{{json .Config.Entrypoint}} {{json .Config.Env}}"
    for host in ("lb", "app1", "app2"):
        shown = lab.ssh(host, f"docker inspect --format '{template}' "
                        "$(docker ps -q --filter label=surveyctl.cluster=pesquisa)")
        assert shown.returncode == 0 and shown.stdout, shown.stderr
        for secret in secrets:
            assert secret.encode() not in shown.stdout, host
        assert b"_FILE=/run/secrets/" in shown.stdout or host == "lb"


def test_mariadb_only_through_the_vpn(lab: Lab, cluster_up: ClusterUp) -> None:
    db, proxy = f"{'10.8.0.1'}/3306", f"{ADDRESSES['lb']}/3306"
    assert _reachable(lab, "app1", [db, proxy]) == {db: False, proxy: True}
    assert _reachable(lab, "cloud", [proxy]) == {proxy: False}
    assert not _connects(ADDRESSES["lb"], 3306)  # this machine is not an app host


def _connects(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=3):
            return True
    except OSError:
        return False


def test_only_the_balancer_port_is_open_to_everyone(lab: Lab, cluster_up: ClusterUp) -> None:
    published = lab.ssh("lb", "docker ps --format '{{.Ports}}' "
                        "--filter label=surveyctl.cluster=pesquisa").stdout.decode()
    ports = sorted({part.split("->")[0].rsplit(":", 1)[1]
                    for line in published.split() for part in line.split(",") if "->" in part})
    assert ports == ["3306", "6379", "80"], published
    assert _connects(ADDRESSES["lb"], 80)
    for port in (6379, 3306):  # published for the app hosts only (firewall)
        assert not _connects(ADDRESSES["lb"], port), port
    assert not _connects(ADDRESSES["app1"], 8000) and not _connects(ADDRESSES["app1"], 8100)
    assert _reachable(lab, "cloud", [f"{ADDRESSES['lb']}/6379"]) == {
        f"{ADDRESSES['lb']}/6379": False}


def _get(path: str, data: bytes | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(BASE + path, data=data)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers)


def _has_headers(headers: dict) -> bool:
    return headers.get("X-Content-Type-Options") == "nosniff" and all(
        headers.get(name) for name in HEADERS)


def test_security_headers_on_every_answer(lab: Lab, cluster_up: ClusterUp) -> None:
    """200, the app's 404, Nginx's own 413 and 502 (both app containers stopped)."""
    answers = {"200": _get("/login"), "404": _get("/no-such-page"),
               "413": _get("/login", b"x" * (2 * 1024 * 1024))}
    stopped = [host for host in ("app1", "app2")
               if lab.ssh(host, "docker stop -t 1 pesquisa-app-1").returncode == 0]
    try:
        answers["502"] = _get("/healthz")
    finally:
        for host in stopped:
            lab.ssh(host, "docker start pesquisa-app-1")
    done = surveyctl("up", *_config(lab), timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    # Once `up` has seen the backends answer through Nginx, every Nginx worker serves:
    # the upstream's failure counts are shared (its `zone`). Without it, the worker that
    # saw both backends die kept answering 502 for a while after `up` said ok. Requests
    # at once land on both workers.
    with ThreadPoolExecutor(8) as pool:
        burst = list(pool.map(lambda _: _get("/healthz")[0], range(8)))
    assert burst == [200] * 8, burst
    assert {name: status for name, (status, _) in answers.items()} == {
        "200": 200, "404": 404, "413": 413, "502": 502}
    for name, (_, headers) in answers.items():
        assert _has_headers(headers), (name, headers)
