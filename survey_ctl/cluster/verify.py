"""After converging: the VPN tunnel, container health, Nginx, and app → MariaDB, per host.

Each check gives `Check` values (host, what, ok, detail); a failed one fails its host.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from survey_ctl.errors import SurveyctlError
from survey_ctl.remote.docker import list_containers
from survey_ctl.specs.cluster import container_name
from survey_ctl.specs.container import LABEL_CLUSTER

if TYPE_CHECKING:
    import paramiko

    from survey_ctl.config import Topology
    from survey_ctl.remote.ssh import HostConnection, HostPool
    from survey_ctl.specs.container import ContainerSpec

VPN_TIMEOUT = 60.0
POLL = 0.25  # seconds between polls (tunnel, Nginx): one round trip each
QUIET = 5.0  # seconds `healthy` waits for a Docker event before reading the states anyway
SETTLE = 0.05

# Runs inside an app container: GET /readyz (MariaDB and Redis answer), print its JSON.
READY_SCRIPT = (
    "import sys, urllib.error, urllib.request\n"
    "try:\n"
    "    r = urllib.request.urlopen('http://127.0.0.1:%d/readyz', timeout=10)\n"
    "    print(r.status, r.read().decode())\n"
    "except urllib.error.HTTPError as e:\n"
    "    print(e.code, e.read().decode()); sys.exit(1)\n"
    "except OSError as e:\n"
    "    print(0, e); sys.exit(1)\n"
)


@dataclass(frozen=True)
class Check:
    """One verified fact about one host."""

    host: str
    what: str
    ok: bool
    detail: str


def _safely(host: str, what: str, probe: Callable[[], Check | list[Check]]) -> list[Check]:
    try:
        found = probe()
    except SurveyctlError as exc:
        return [Check(host, what, False, exc.message)]
    return found if isinstance(found, list) else [found]


def vpn_tunnel(conn: HostConnection, topo: Topology) -> Check:
    """Poll `ip addr show IFACE` in the VPN client container until it is up with an address."""
    assert topo.vpn is not None
    name, interface = container_name(topo, "vpn"), topo.vpn.interface
    deadline = time.monotonic() + VPN_TIMEOUT
    shown = ""
    while True:
        result = conn.run(["docker", "exec", name, "ip", "-4", "addr", "show", "dev", interface])
        shown = result.text.strip() or result.error_text
        if result.ok and ",UP" in shown and " inet " in f" {shown}":
            address = shown.split(" inet ", 1)[1].split()[0] if " inet " in shown else "?"
            return Check(conn.name, f"vpn {interface}", True, f"up, {address}")
        if time.monotonic() > deadline:
            return Check(conn.name, f"vpn {interface}", False,
                         f"not up after {VPN_TIMEOUT:g}s: {shown[:200]} (see `surveyctl logs vpn`)")
        time.sleep(POLL)


def healthy(conn: HostConnection, topo: Topology, specs: list[ContainerSpec],
            timeout: float) -> list[Check]:
    """Wait until every container of `specs` with a health check is healthy.

    No busy polling: the host's `docker events` for the cluster's containers (a health
    status changed, a container died) wake the wait, and only then are the states read
    again (one round trip); without events, every `QUIET` seconds. (Polling 13 lab hosts
    every 0.25 s took more CPU than the app containers' own start-up.)
    """
    wanted = {spec.name for spec in specs if spec.healthcheck is not None}
    if not wanted:
        return []
    deadline = time.monotonic() + timeout
    events = None
    try:
        while True:
            seen = {c.name: c for c in list_containers(conn, topo.cluster) if c.name in wanted}
            states = {name: (seen[name].state, seen[name].health) if name in seen
                      else ("missing", None) for name in sorted(wanted)}
            done = all(health == "healthy" for _, health in states.values())
            broken = any(state in ("exited", "dead", "missing") for state, _ in states.values())
            if done or broken or time.monotonic() > deadline:
                return [Check(conn.name, name, health == "healthy",
                              "healthy" if health == "healthy" else
                              f"{state}, health {health or 'none'}{_last_health(conn, name)}")
                        for name, (state, health) in states.items()]
            if events is None:  # then read again at once: no change in between is missed
                events = conn.open_command([
                    "docker", "events", "--filter", "type=container",
                    "--filter", f"label={LABEL_CLUSTER}={topo.cluster}",
                    "--filter", "event=health_status", "--filter", "event=die",
                    "--format", "{{.ID}}"])
                continue
            _wait_for_event(events, min(QUIET, max(deadline - time.monotonic(), 0.0)))
    finally:
        if events is not None:
            events.close()


def _wait_for_event(events: paramiko.Channel, seconds: float) -> None:
    """Until `events` prints something (then drain what came at once) or `seconds` pass;
    a stream that ended (no `docker events`) becomes a plain `POLL` wait."""
    if events.exit_status_ready() and not events.recv_ready():
        time.sleep(min(POLL, seconds))
        return
    events.settimeout(seconds)
    try:
        if not events.recv(65536):
            time.sleep(min(POLL, seconds))
            return
        time.sleep(SETTLE)  # events that come together wake one read
        while events.recv_ready():
            events.recv(65536)
    except TimeoutError:
        pass


def _last_health(conn: HostConnection, name: str) -> str:
    result = conn.run(["docker", "inspect", "--format", "{{json .State.Health}}", name])
    try:
        log = (json.loads(result.stdout) or {}).get("Log") or []
    except ValueError:
        return ""
    output = (log[-1].get("Output") or "").strip().replace("\n", " ") if log else ""
    return f": {output[:200]}" if output else ""


NGINX_TIMEOUT = 25.0  # a backend Nginx saw fail is retried after fail_timeout (5 s)


def nginx_answers(conn: HostConnection, topo: Topology) -> Check:
    """GET /nginx-health and the app's health path through Nginx, from the lb host,
    retried for a while (backends just replaced may still be marked failed)."""
    deadline = time.monotonic() + NGINX_TIMEOUT
    while True:
        check = _nginx_once(conn, topo)
        if check.ok or time.monotonic() > deadline:
            return check
        time.sleep(POLL)


def _nginx_once(conn: HostConnection, topo: Topology) -> Check:
    import http.client

    address, port = topo.lb_host.address, topo.lb.port
    statuses = []
    for path in ("/nginx-health", topo.app.healthcheck.path):
        channel = conn.open_tunnel(address, port, timeout=10)
        try:
            channel.settimeout(15)
            request = http.client.HTTPConnection(address, port, timeout=15)
            request.sock = channel  # type: ignore[assignment]
            request.request("GET", path, headers={"Host": address})
            response = request.getresponse()
            response.read()
            statuses.append((path, response.status, response.getheader("X-Served-By") or ""))
        except (OSError, http.client.HTTPException) as exc:
            statuses.append((path, 0, str(exc)))
        finally:
            channel.close()
    ok = all(status == 200 for _, status, _ in statuses)
    detail = ", ".join(f"{path} {status or 'failed'}" for path, status, _ in statuses)
    return Check(conn.name, f"nginx on port {port}", ok, detail)


def app_reaches_db(conn: HostConnection, topo: Topology, specs: list[ContainerSpec]) -> list[Check]:
    """`/readyz` inside each app container: MariaDB (and Redis) answer."""
    checks = []
    for spec in specs:
        if spec.role != "app":
            continue
        result = conn.run(["docker", "exec", spec.name, "python3", "-c",
                           READY_SCRIPT % topo.app.port], timeout=60)
        status, _, body = result.text.strip().partition(" ")
        try:
            parts = json.loads(body).get("checks", {})
            detail = ", ".join(f"{k} {v}" for k, v in sorted(parts.items()))
        except ValueError:
            detail = (body or result.error_text)[:200]
        checks.append(Check(conn.name, f"{spec.name} → MariaDB", result.ok and status == "200",
                            detail))
    return checks


def verify(pool: HostPool, topo: Topology, desired: dict[str, list[ContainerSpec]],
           hosts: list[str]) -> list[Check]:
    """Every check for the converged `hosts`, each host on its own: the VPN tunnel (vpn
    host), container health, Nginx (lb host, once every app host's health is known),
    then, once the tunnel is up, app → MariaDB (app hosts). Checks in host order, each
    host's in that order."""
    vpn = topo.vpn_host
    tunnel = threading.Event()
    if vpn is None or vpn.name not in hosts:
        tunnel.set()
    check = topo.app.healthcheck
    timeout = check.interval * check.retries + check.timeout + 30
    apps = {h.name for h in topo.app_hosts}
    # Nginx is checked once the backends are healthy (it marks a booting one failed).
    backends = {name: threading.Event() for name in apps}
    for name in apps - set(hosts):
        backends[name].set()

    def one(conn: HostConnection) -> list[Check]:
        checks: list[Check] = []
        if vpn is not None and conn.name == vpn.name:
            try:
                checks += _safely(conn.name, "vpn", lambda: vpn_tunnel(conn, topo))
            finally:
                tunnel.set()
        specs = desired.get(conn.name, [])
        try:
            checks += _safely(conn.name, "health", lambda: healthy(conn, topo, specs, timeout))
        finally:
            if conn.name in backends:
                backends[conn.name].set()
        if conn.name == topo.lb_host.name:
            for ready in backends.values():
                ready.wait(timeout + 10)
            checks += _safely(conn.name, "nginx", lambda: nginx_answers(conn, topo))
        if conn.name in apps:
            tunnel.wait(VPN_TIMEOUT + 10)
            checks += _safely(conn.name, "database", lambda: app_reaches_db(conn, topo, specs))
        return checks

    outcomes = pool.each(one, hosts)
    return [found for name in hosts for found in (outcomes[name].value or [])]
