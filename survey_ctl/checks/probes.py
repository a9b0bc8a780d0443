"""Gathering facts over SSH: one connection per host, all hosts and probes in parallel.

Per host, one trivial command (latency) and ONE shell script (clock, Docker version,
`docker ps` + `docker inspect` of the cluster's containers and, on the vpn host, the
tunnel interface, the route to MariaDB and the OpenVPN client's log). Network probes
are TCP connections made BY a host (SSH direct-tcpip channels), so they need no tool
on the host and reach ports that are firewalled to that host: HTTP through Nginx and
to each backend from the lb host, AUTH+PING to Redis from the redis host, the MariaDB
greeting through the tunnel from the vpn host. Each app container runs `app_probe.py`
(its own settings and clients) to reach MariaDB and Redis. Secrets travel only inside
the SSH connection (the Redis AUTH) or stay in the containers' files.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from importlib import resources
from typing import TYPE_CHECKING, Any, TypeVar

from survey_ctl.checks.facts import (
    AppProbe,
    BackendFacts,
    BalancerFacts,
    ContainerFacts,
    HostFacts,
    HttpProbe,
    RedisFacts,
    VpnFacts,
    container_facts,
    parse_http_head,
    parse_ip_addr,
    parse_ip_link,
    parse_mysql_greeting,
    parse_openvpn_log,
    parse_resp_replies,
    parse_route,
    parse_sections,
    redact,
    redis_info,
    resp_command,
)
from survey_ctl.checks.snapshot import Snapshot
from survey_ctl.errors import SurveyctlError
from survey_ctl.specs.container import LABEL_CLUSTER

if TYPE_CHECKING:
    from survey_ctl.config import Host, Topology
    from survey_ctl.remote.ssh import HostConnection, HostPool, Outcome

T = TypeVar("T")
PROBE_TIMEOUT = 5.0  # seconds, for each network probe
SCRIPT_TIMEOUT = 30.0
MAX_PROBES = 128  # probes running at once in one snapshot (hosts, Nginx, Redis, apps)
VPN_LOG_LINES = 300

# $1 label key, $2 cluster, then on the vpn host: $3 interface, $4 database host, $5 container.
# Sections print as `@@surveyctl-section NAME@@ … @@surveyctl-rc N@@` for `parse_sections`.
# (Running them in the background was measured no faster: each docker call takes ~25 ms.)
HOST_SCRIPT = r"""
section() { printf '\n@@surveyctl-section %s@@\n' "$1"; }
end() { printf '\n@@surveyctl-rc %s@@\n' "$1"; }
label=$1 cluster=$2 iface=$3 dbhost=$4 vpn=$5
ipc() { if command -v ip >/dev/null 2>&1; then ip "$@"; else docker exec "$vpn" ip "$@"; fi; }
section clock; date -u +%s; end $?
section docker; docker version --format '{{json .Server.Version}}' 2>&1; end $?
section containers
ids=$(docker ps --all --quiet --no-trunc --filter "label=$label=$cluster" 2>&1); rc=$?
if [ $rc -ne 0 ]; then echo "$ids"; elif [ -z "$ids" ]; then echo '[]'
else docker inspect $ids 2>&1; rc=$?; fi
end $rc
if [ -n "$iface" ]; then
  section link; ipc -s link show dev "$iface" 2>&1; end $?
  section addr; ipc -o addr show dev "$iface" 2>&1; end $?
  section route; ipc route get "$dbhost" 2>&1; end $?
  section vpnlog; docker logs --timestamps --tail LOG_LINES "$vpn" 2>&1; end $?
fi
""".replace("LOG_LINES", str(VPN_LOG_LINES))


def app_probe_source() -> bytes:
    """The script each app container runs on `python3 -` (survey_ctl/checks/app_probe.py)."""
    return resources.files("survey_ctl.checks").joinpath("app_probe.py").read_bytes()


def _short(error: SurveyctlError, host: str) -> str:
    """The error's message without the `host: ` prefix `HostError` adds."""
    return error.message.removeprefix(f"{host}: ")


# ---------------------------------------------------------------- network probes


def _recv_until(channel: Any, done: Callable[[bytes], bool], limit: int = 1 << 20) -> bytes:
    data = b""
    while not done(data) and len(data) < limit:
        chunk = channel.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def _tunnel_error(exc: Exception, host: str, address: str, port: int,
                  timeout: float = PROBE_TIMEOUT) -> str:
    """A short reason for a probe that failed: could not connect, timed out, or else."""
    if isinstance(exc, SurveyctlError):
        # paramiko's reason text is unreliable when channels fail concurrently.
        return f"cannot connect to {address}:{port} from {host}"
    if isinstance(exc, socket.timeout | TimeoutError):
        return f"no answer from {address}:{port} within {timeout:g} s"
    return f"{type(exc).__name__}: {exc}"[:200]


def http_get(conn: HostConnection, address: str, port: int, path: str,
             timeout: float = PROBE_TIMEOUT) -> HttpProbe:
    """GET `path` from `address:port`, connecting from the host of `conn`."""
    started = time.monotonic()
    request = (f"GET {path} HTTP/1.1\r\nHost: {address}\r\nUser-Agent: surveyctl-status\r\n"
               "Connection: close\r\n\r\n").encode()
    try:
        channel = conn.open_tunnel(address, port, timeout=timeout)
    except SurveyctlError as exc:
        return HttpProbe(error=_tunnel_error(exc, conn.name, address, port, timeout))
    try:
        channel.settimeout(timeout)
        channel.sendall(request)
        head = _recv_until(channel, lambda data: b"\r\n\r\n" in data, 65536)
        status, headers = parse_http_head(head)
        return HttpProbe(status, headers.get("x-served-by"), time.monotonic() - started)
    except (OSError, ValueError) as exc:
        return HttpProbe(error=_tunnel_error(exc, conn.name, address, port, timeout))
    finally:
        channel.close()


def redis_ping(conn: HostConnection, address: str, port: int, password: str,
               timeout: float = PROBE_TIMEOUT) -> RedisFacts:
    """AUTH, PING and INFO server over a connection the redis host makes to Redis."""
    endpoint = f"{address}:{port}"
    facts = RedisFacts(host=conn.name, endpoint=endpoint)
    try:
        channel = conn.open_tunnel(address, port, timeout=timeout)
    except SurveyctlError as exc:
        return _replace(facts, error=_tunnel_error(exc, conn.name, address, port, timeout))
    try:
        channel.settimeout(timeout)
        started = time.monotonic()
        channel.sendall(resp_command("AUTH", password) + resp_command("PING")
                        + resp_command("INFO", "server"))

        def complete(data: bytes) -> bool:
            try:
                parse_resp_replies(data, 3)
            except ValueError:
                return False
            return True

        replies = parse_resp_replies(_recv_until(channel, complete), 3)
        elapsed = time.monotonic() - started
        for reply in replies[:2]:
            if isinstance(reply, Exception):
                return _replace(facts, error=f"Redis answered: {reply}")
        if replies[1] != "PONG":
            return _replace(facts, error=f"unexpected answer to PING: {replies[1]!r}"[:200])
        info = redis_info(replies[2] if isinstance(replies[2], str) else "")
        uptime = info.get("uptime_in_seconds", "")
        return _replace(facts, ping_s=elapsed, version=info.get("redis_version"),
                        uptime_s=int(uptime) if uptime.isdigit() else None)
    except (OSError, ValueError) as exc:
        return _replace(facts, error=_tunnel_error(exc, conn.name, address, port, timeout))
    finally:
        channel.close()


def mariadb_greeting(conn: HostConnection, address: str, port: int,
                     timeout: float = PROBE_TIMEOUT) -> tuple[float | None, str | None, str | None]:
    """(seconds, server version, error): a TCP connection from the host to MariaDB."""
    started = time.monotonic()
    try:
        channel = conn.open_tunnel(address, port, timeout=timeout)
    except SurveyctlError as exc:
        return None, None, _tunnel_error(exc, conn.name, address, port, timeout)
    try:
        channel.settimeout(timeout)
        packet = _recv_until(channel, _whole_mysql_packet)
        server, error = parse_mysql_greeting(packet)
        return (None if error else time.monotonic() - started), server, error
    except OSError as exc:
        return None, None, _tunnel_error(exc, conn.name, address, port, timeout)
    finally:
        channel.close()


def _whole_mysql_packet(data: bytes) -> bool:
    return len(data) >= 4 and len(data) >= 4 + int.from_bytes(data[:3], "little")


def _itself(connection: HostConnection) -> HostConnection:
    return connection


def _replace(facts: T, **changes: Any) -> T:
    return dataclasses.replace(facts, **changes)  # type: ignore[type-var]


# ---------------------------------------------------------------- the prober


class Prober:
    """Takes snapshots of one cluster; keeps one SSH connection per host between them."""

    def __init__(self, topo: Topology, pool: HostPool | None = None,
                 connect_timeout: float | None = None) -> None:
        """`connect_timeout` caps each host's `ssh.connect_timeout` (a quick verdict)."""
        from pydantic import SecretStr

        from survey_ctl.remote.ssh import HostPool
        from survey_ctl.specs import cluster_specs, container_name

        self.topo = topo
        self.connect_timeout = connect_timeout
        # A backend, Redis or MariaDB that stays silent as long as a host may is down too.
        self.probe_timeout = min(PROBE_TIMEOUT, connect_timeout or PROBE_TIMEOUT)
        self.connect_s: dict[str, float] = {}
        self.pool = pool or HostPool(topo.hosts, connector=self._connect)
        specs = cluster_specs(topo, SecretStr("") if topo.vpn_host else None)
        self.expected = {host: [(spec.name, spec.labels.get("surveyctl.role")) for spec in items]
                         for host, items in specs.items()}
        self.vpn_container = container_name(topo, "vpn") if topo.vpn_host else None
        app_env = [value.get_secret_value() for value in topo.app.env.values()]
        self.secrets = [topo.database.password.get_secret_value(),
                        topo.redis.password.get_secret_value(), *app_env]
        self.latest_migration = _latest_migration(topo)
        self._probe = app_probe_source()

    def __enter__(self) -> Prober:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every connection."""
        self.pool.close()

    def _connect(self, host: Host) -> HostConnection:
        from survey_ctl.remote.ssh import connect

        if self.connect_timeout is not None and self.connect_timeout < host.ssh.connect_timeout:
            host = host.with_ssh(host.ssh.model_copy(
                update={"connect_timeout": self.connect_timeout}))
        started = time.monotonic()
        connection = connect(host)
        self.connect_s[host.name] = time.monotonic() - started
        return connection

    def _clean(self, text: str | None) -> str | None:
        return redact(text, self.secrets)

    # ------------------------------------------------------------ one snapshot

    def snapshot(self, balancer: bool = True, services: bool = True,
                 only: list[str] | None = None) -> Snapshot:
        """Observe the hosts (all, or those named in `only`) and services once; assessed.

        Without `balancer` Nginx is not probed; without `services` neither Redis nor the
        app containers are.
        """
        from survey_ctl.specs import db_endpoint

        topo = self.topo
        started = time.monotonic()
        taken_at = datetime.now(UTC)
        apps = self._app_containers() if services else []
        opened, results = self._probe_all(only, apps, balancer, services)

        hosts: list[HostFacts] = []
        containers: list[ContainerFacts] = []
        vpn: VpnFacts | None = None
        for host in topo.hosts:
            outcome = opened.get(host.name)
            if outcome is None:
                continue
            if outcome.error is not None:
                hosts.append(HostFacts(host.name, host.address, tuple(host.roles),
                                       error=self._clean(_short(outcome.error, host.name)),
                                       hint=outcome.error.hint))
                continue
            facts, seen, vpn_facts = results[f"host:{host.name}"]
            hosts.append(facts)
            containers.extend(seen)
            vpn = vpn_facts or vpn
        if (vpn is None and topo.vpn_host is not None and topo.vpn is not None
                and self.vpn_container and topo.vpn_host.name in opened):
            vpn = VpnFacts(topo.vpn_host.name, self.vpn_container, topo.vpn.interface,
                           f"{topo.database.host}:{topo.database.port}",
                           link_error="not observed")
        probes = [results.get(f"app:{host}:{name}")
                  or AppProbe(host, name, error=f"host {host} unreachable")
                  for host, name in apps]
        redis = results.get("redis")
        if services and redis is None:
            redis = RedisFacts(topo.redis_host.name,
                               f"{topo.redis_host.address}:{topo.redis.port}",
                               error=f"host {topo.redis_host.name} unreachable")
        lb_facts = results.get("balancer")
        if balancer and lb_facts is None:
            lb_facts = BalancerFacts(self._lb_url(), error=f"host {topo.lb_host.name} unreachable")
        proxy_host, proxy_port = db_endpoint(topo)
        return Snapshot(
            cluster=topo.cluster,
            taken_at=taken_at,
            elapsed_s=time.monotonic() - started,
            database=f"{topo.database.host}:{topo.database.port}",
            db_endpoint=f"{proxy_host}:{proxy_port}",
            db_via=topo.database.via,
            latest_migration=self.latest_migration,
            hosts=tuple(hosts),
            containers=tuple(containers),
            balancer=lb_facts,
            redis=redis,
            apps=tuple(probes),
            vpn=vpn,
        ).assessed()

    def _app_containers(self) -> list[tuple[str, str]]:
        """(host, container) of every app replica, in topology order."""
        from survey_ctl.specs import container_name

        return [(host.name, container_name(self.topo, "app", n)) for host in self.topo.app_hosts
                for n in range(1, self.topo.app.replicas + 1)]

    def _probe_all(self, only: list[str] | None, apps: list[tuple[str, str]],
                   balancer: bool, services: bool
                   ) -> tuple[dict[str, Outcome[HostConnection]], dict[str, Any]]:
        """Open the connections and run every probe; each probe starts as soon as ITS
        host's connection is open, so a silent host delays nothing else.

        Returns each host's connection outcome and the probes' results by key.
        """
        topo = self.topo
        names = list(self.pool.hosts if only is None else only)
        calls: list[tuple[str, str, Callable[..., Any], tuple[Any, ...]]] = [
            (f"host:{name}", name, self._host, ()) for name in names]
        if balancer and topo.lb_host.name in names:
            calls.append(("balancer", topo.lb_host.name, self._balancer, ()))
        if services and topo.redis_host.name in names:
            calls.append(("redis", topo.redis_host.name, self._redis, ()))
        calls += [(f"app:{host}:{name}", host, self._app, (name,))
                  for host, name in apps if host in names]
        # A thread per probe: they wait on the network, not on the CPU (a pool of 16
        # queued the app probes of 24 hosts behind one another).
        with ThreadPoolExecutor(max_workers=max(1, min(32, len(names)))) as connectors, \
                ThreadPoolExecutor(max_workers=max(1, min(MAX_PROBES, len(calls)))) as workers:
            pending = {name: connectors.submit(self.pool.outcome, name, _itself)
                       for name in names}

            def on(name: str, work: Callable[..., T], *args: Any) -> Callable[[], T | None]:
                def run() -> T | None:
                    conn = pending[name].result().value
                    return None if conn is None else work(conn, *args)
                return run

            jobs: dict[str, Future[Any]] = {
                key: workers.submit(on(name, work, *args)) for key, name, work, args in calls}
            results = {key: job.result() for key, job in jobs.items()}
            opened = {name: future.result() for name, future in pending.items()}
        return opened, {key: value for key, value in results.items() if value is not None}

    def _lb_url(self) -> str:
        return f"http://{self.topo.lb_host.address}:{self.topo.lb.port}{self._health_path}"

    @property
    def _health_path(self) -> str:
        return self.topo.app.healthcheck.path

    # ------------------------------------------------------------ per host

    def _host(self, conn: HostConnection) -> tuple[HostFacts, list[ContainerFacts],
                                                   VpnFacts | None]:
        """Latency, Docker, containers (and the VPN on the vpn host) of one host."""
        from survey_ctl.remote.ssh import Result, docker_problem

        topo, host = self.topo, conn.host
        base = HostFacts(host.name, host.address, tuple(host.roles),
                         connect_s=self.connect_s.get(host.name))
        is_vpn = topo.vpn_host is not None and topo.vpn_host.name == host.name
        vpn_args = ([topo.vpn.interface, topo.database.host, self.vpn_container or ""]
                    if is_vpn and topo.vpn else ["", "", ""])
        try:
            started = time.monotonic()
            conn.run(["true"], timeout=SCRIPT_TIMEOUT)
            latency = time.monotonic() - started
            result = conn.run(["sh", "-c", HOST_SCRIPT, "sh", LABEL_CLUSTER, topo.cluster,
                               *vpn_args], timeout=SCRIPT_TIMEOUT)
        except SurveyctlError as exc:
            failed = _replace(base, error=self._clean(_short(exc, host.name)), hint=exc.hint)
            return failed, [], None
        base = _replace(base, latency_s=latency)
        sections = parse_sections(result.text)
        rc, text = sections.get("docker", (1, "no output"))
        if rc != 0:
            problem = docker_problem(host.name, host.ssh.user, Result(rc, b"", text.encode()))
            message = _short(problem, host.name) if problem else f"docker version failed: {text}"
            return (_replace(base, error=self._clean(message[:300]),
                             hint=problem.hint if problem else None), [], None)
        try:
            version = str(json.loads(text))
        except ValueError:
            version = text.strip()[:40]
        base = _replace(base, docker_version=version)
        clock = _host_clock(sections.get("clock"))
        containers = self._containers(host.name, sections.get("containers"), clock)
        vpn = self._vpn(conn, sections) if is_vpn else None
        return base, containers, vpn

    def _containers(self, host: str, section: tuple[int, str] | None,
                    clock: datetime) -> list[ContainerFacts]:
        expected = dict(self.expected.get(host, []))
        docs: list[dict[str, Any]] = []
        if section is not None and section[0] == 0:
            try:
                docs = json.loads(section[1])
            except ValueError:
                docs = []
        seen = [container_facts(host, doc, clock) for doc in docs]
        seen = [_replace(c, expected=c.name in expected) for c in seen]
        names = {c.name for c in seen}
        missing = [ContainerFacts(host, name, role, "missing")
                   for name, role in expected.items() if name not in names]
        rank = {name: i for i, name in enumerate(expected)}  # topology order, strays last
        return sorted(seen + missing, key=lambda c: (rank.get(c.name, len(rank)), c.name))

    def _vpn(self, conn: HostConnection, sections: dict[str, tuple[int, str]]) -> VpnFacts:
        topo = self.topo
        assert topo.vpn is not None and self.vpn_container is not None
        db = topo.database
        rc, text = sections.get("link", (1, "no output"))
        link = parse_ip_link(text) if rc == 0 else None
        _, addr = sections.get("addr", (1, ""))
        rc, route_text = sections.get("route", (1, "no output"))
        route = parse_route(route_text) if rc == 0 else None
        _, log_text = sections.get("vpnlog", (1, ""))
        facts = VpnFacts(
            host=conn.name, container=self.vpn_container, interface=topo.vpn.interface,
            database=f"{db.host}:{db.port}", link=link,
            link_error=None if link else self._clean(text.strip()[:200] or "no such interface"),
            address=parse_ip_addr(addr), route=route,
            route_error=None if route else self._clean(route_text.strip()[:200] or "no route"),
            log=parse_openvpn_log(log_text.splitlines()),
        )
        if route is None or route.dev != topo.vpn.interface:
            # Never send the probe outside the tunnel.
            return _replace(facts, db_error=f"not tried: the route to {db.host} does not go "
                            f"through {topo.vpn.interface}")
        seconds, server, error = mariadb_greeting(conn, db.host, db.port, self.probe_timeout)
        return _replace(facts, db_tcp_s=seconds, db_server=server, db_error=self._clean(error))

    # ------------------------------------------------------------ services

    def _balancer(self, conn: HostConnection) -> BalancerFacts:
        """Requests through Nginx and to each backend directly, all from the lb host."""
        from survey_ctl.specs import app_backends

        topo = self.topo
        targets = [(host, container, address) for (host, container), address
                   in zip(self._app_containers(), app_backends(topo), strict=True)]
        count = max(4, 2 * len(targets))
        path = self._health_path
        with ThreadPoolExecutor(max_workers=min(8, count + len(targets))) as workers:
            through = [workers.submit(http_get, conn, topo.lb_host.address, topo.lb.port, path,
                                     self.probe_timeout)
                       for _ in range(count)]
            direct = [workers.submit(http_get, conn, address.rsplit(":", 1)[0],
                                     int(address.rsplit(":", 1)[1]), path, self.probe_timeout)
                      for _, _, address in targets]
            requests = tuple(self._clean_probe(job.result()) for job in through)
            directs = [self._clean_probe(job.result()) for job in direct]
        backends = []
        for (host, container, address), probe in zip(targets, directs, strict=True):
            share = sum(1 for r in requests if r.ok and probe.served_by
                        and r.served_by == probe.served_by)
            backends.append(BackendFacts(address, host, container, probe, share))
        return BalancerFacts(self._lb_url(), requests, tuple(backends))

    def _redis(self, conn: HostConnection) -> RedisFacts:
        topo = self.topo
        facts = redis_ping(conn, topo.redis_host.address, topo.redis.port,
                           topo.redis.password.get_secret_value(), self.probe_timeout)
        return _replace(facts, error=self._clean(facts.error)) if facts.error else facts

    def _clean_probe(self, probe: HttpProbe) -> HttpProbe:
        return _replace(probe, error=self._clean(probe.error)) if probe.error else probe

    def _app(self, conn: HostConnection, container: str) -> AppProbe:
        """Run app_probe.py in one app container."""
        base = AppProbe(conn.name, container)
        try:
            result = conn.docker(["exec", "-i", container, "python3", "-"], stdin=self._probe,
                                 timeout=SCRIPT_TIMEOUT, check=False)
        except SurveyctlError as exc:
            return _replace(base, error=self._clean(_short(exc, conn.name)))
        lines = result.text.strip().splitlines()
        try:
            data = json.loads(lines[-1]) if result.ok and lines else None
        except ValueError:
            data = None
        if not isinstance(data, dict):
            killed = " (killed: the container stopped or restarted)" if result.rc == 137 else ""
            why = result.error_text or f"the probe exited with {result.rc}{killed}"
            return _replace(base, error=self._clean(why))
        fields = {key: value for key, value in data.items()
                  if key in AppProbe.__dataclass_fields__ and key not in ("host", "container")}
        for key in ("db_error", "redis_error", "error"):
            fields[key] = self._clean(fields.get(key))
        return _replace(base, **fields)


def _host_clock(section: tuple[int, str] | None) -> datetime:
    """The host's clock from the script's `date -u +%s` (this machine's if unreadable)."""
    if section and section[0] == 0 and section[1].strip().isdigit():
        return datetime.fromtimestamp(int(section[1].strip()), UTC)
    return datetime.now(UTC)


def _latest_migration(topo: Topology) -> int | None:
    """The newest migration file's version, when the folder is here and readable."""
    from survey_ctl.migrate import MigrationError, load_migrations

    folder = topo.migrations_dir
    if folder is None or not folder.is_dir():
        return None
    try:
        migrations = load_migrations(folder)
    except MigrationError:
        return None
    return migrations[-1].version if migrations else None
