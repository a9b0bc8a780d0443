"""A `Snapshot` of the cluster: the facts, a verdict per item, the overall verdict (pure).

`assess(snapshot)` turns facts into `Check`s (ok / degraded / down, a short reason and,
when not ok, a hint); the overall verdict is the worst of them. `document(snapshot)` is
the `status --json` document. Nothing here does I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from survey_ctl.checks.facts import (
    AppProbe,
    BalancerFacts,
    ContainerFacts,
    HostFacts,
    RedisFacts,
    VpnFacts,
)

Level = Literal["ok", "degraded", "down"]
LEVELS: tuple[Level, ...] = ("ok", "degraded", "down")
SECTIONS = ("hosts", "containers", "balancer", "redis", "database", "vpn")
SLOW_SSH_S = 1.0


@dataclass(frozen=True)
class Check:
    """The verdict on one item: its section, a name, the level, why, and what to do."""

    section: str
    name: str
    level: Level
    reason: str
    hint: str | None = None

    @property
    def ok(self) -> bool:
        """True when the level is "ok"."""
        return self.level == "ok"


def worst(levels: Any) -> Level:
    """The worst of `levels` ("ok" when there are none)."""
    return max(levels, key=LEVELS.index, default="ok")


@dataclass(frozen=True)
class Snapshot:
    """Everything `status` observed at one moment, and the verdicts."""

    cluster: str
    taken_at: datetime
    elapsed_s: float
    database: str  # host:port of MariaDB
    db_endpoint: str  # host:port the app containers connect to (the proxy, or MariaDB)
    db_via: str
    latest_migration: int | None  # the newest migration file's version, when known
    hosts: tuple[HostFacts, ...] = ()
    containers: tuple[ContainerFacts, ...] = ()
    balancer: BalancerFacts | None = None
    redis: RedisFacts | None = None
    apps: tuple[AppProbe, ...] = ()
    vpn: VpnFacts | None = None
    checks: tuple[Check, ...] = field(default=())

    @property
    def level(self) -> Level:
        """The overall verdict: the worst check."""
        return worst(check.level for check in self.checks)

    @property
    def problems(self) -> list[Check]:
        """The checks that are not ok, worst first."""
        bad = [check for check in self.checks if not check.ok]
        return sorted(bad, key=lambda check: -LEVELS.index(check.level))

    def section(self, name: str) -> list[Check]:
        """The checks of one section, in order."""
        return [check for check in self.checks if check.section == name]

    def assessed(self) -> Snapshot:
        """This snapshot with its checks computed from its facts."""
        return dataclasses.replace(self, checks=tuple(assess(self)))


# ---------------------------------------------------------------- verdicts


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


def assess(snap: Snapshot) -> Iterator[Check]:
    """Every check of the snapshot, section by section."""
    yield from _host_checks(snap)
    yield from _container_checks(snap)
    yield from _balancer_checks(snap)
    yield from _redis_checks(snap)
    yield from _database_checks(snap)
    yield from _vpn_checks(snap)


def _host_checks(snap: Snapshot) -> Iterator[Check]:
    for host in snap.hosts:
        if host.error:
            yield Check("hosts", host.name, "down", host.error, host.hint)
        elif host.latency_s is not None and host.latency_s > SLOW_SSH_S:
            yield Check("hosts", host.name, "degraded",
                        f"slow: a trivial command took {host.latency_s:.1f} s",
                        "the host or the network is overloaded")
        else:
            yield Check("hosts", host.name, "ok",
                        f"ssh {_ms(host.latency_s)}, docker {host.docker_version}")


def container_check(container: ContainerFacts, vpn_container: str | None = None) -> Check:
    """The verdict on one container."""
    name = container.name

    def check(level: Level, reason: str, hint: str | None = None) -> Check:
        return Check("containers", name, level, reason, hint)

    start_hint = ("start it with `surveyctl vpn up`" if name == vpn_container
                  else "`surveyctl up` starts it") + "; `surveyctl logs` shows why it stopped"
    if not container.expected:
        return check("degraded", "not in the topology", "`surveyctl up` removes it")
    if container.state == "missing":
        return check("down", "missing", "`surveyctl up` creates it")
    if container.state == "restarting":
        return check("down", f"restarting (restarted {container.restarts} times)",
                     "`surveyctl logs` shows why it keeps failing")
    if container.state != "running":
        code = f" (exit {container.exit_code})" if container.exit_code is not None else ""
        return check("down", f"{container.state}{code}", start_hint)
    if container.health == "unhealthy":
        return check("down", "running but unhealthy", "`surveyctl logs` shows why")
    if container.health == "starting":
        return check("degraded", "running, health check starting")
    return check("ok", "running" + (f", {container.health}" if container.health else ""))


def _container_checks(snap: Snapshot) -> Iterator[Check]:
    vpn = snap.vpn.container if snap.vpn else None
    for container in snap.containers:
        yield container_check(container, vpn)


def _balancer_checks(snap: Snapshot) -> Iterator[Check]:
    lb = snap.balancer
    if lb is None:
        return
    if lb.error:
        yield Check("balancer", "nginx", "down", lb.error)
        return
    total, answered = len(lb.requests), lb.answered
    errors = sorted({probe.error or f"HTTP {probe.status}" for probe in lb.requests
                     if not probe.ok})
    reason = f"{answered}/{total} requests to {lb.url} answered"
    if errors:
        reason += f" ({'; '.join(errors)[:200]})"
    hint = "check the nginx container and `surveyctl logs nginx`"
    if answered == total and total:
        yield Check("balancer", "nginx", "ok", reason)
    elif answered:
        yield Check("balancer", "nginx", "degraded", reason, hint)
    else:
        yield Check("balancer", "nginx", "down", reason, hint)
    for backend in lb.backends:
        probe = backend.direct
        name = f"{backend.host} {backend.address}"
        share = f"; {backend.via_lb}/{total} through nginx"
        if probe.ok:
            yield Check("balancer", name, "ok",
                        f"{probe.served_by or '?'} answered {probe.status} in "
                        f"{_ms(probe.latency_s)}{share}")
        else:
            why = probe.error or f"HTTP {probe.status}"
            yield Check("balancer", name, "down", f"direct request failed: {why}{share}",
                        f"check {backend.container} on {backend.host} (`surveyctl logs`)")


def _redis_checks(snap: Snapshot) -> Iterator[Check]:
    redis = snap.redis
    if redis is not None:
        if redis.error:
            yield Check("redis", f"server {redis.endpoint}", "down", redis.error,
                        f"check the redis container on {redis.host} and redis.password")
        else:
            version = f", redis {redis.version}" if redis.version else ""
            yield Check("redis", f"server {redis.endpoint}", "ok",
                        f"PONG in {_ms(redis.ping_s)}{version}")
    endpoint = redis.endpoint if redis else "?"
    for app in snap.apps:
        name = f"from {app.host}/{app.container}"
        if app.redis_ok:
            yield Check("redis", name, "ok", f"PONG in {_ms(app.redis_ping_s)}")
        else:
            yield Check("redis", name, "down", app.error or app.redis_error or "no answer",
                        f"the app container cannot reach Redis at {endpoint}"
                        ": check the redis host's firewall and the redis container")


def _database_checks(snap: Snapshot) -> Iterator[Check]:
    for app in snap.apps:
        name = f"from {app.host}/{app.container}"
        if not app.db_ok:
            yield Check("database", name, "down", app.error or app.db_error or "no answer",
                        f"the app container cannot reach MariaDB through {snap.db_endpoint}: "
                        + ("run `surveyctl vpn check` to find the broken link"
                           if snap.db_via == "vpn" else
                           "check database.host and the database's firewall"))
            continue
        applied = "none" if app.migration is None else f"{app.migration:04d}"
        reason = (f"connect {_ms(app.db_connect_s)}, query {_ms(app.db_query_s)}, "
                  f"migration {applied}")
        latest = snap.latest_migration
        if latest is not None and (app.migration or 0) < latest:
            yield Check("database", name, "degraded", f"{reason}; newest file is {latest:04d}",
                        "apply the pending migrations: surveyctl db-migrate")
        else:
            yield Check("database", name, "ok", reason)


def vpn_links(snap: Snapshot) -> list[Check]:
    """The links of the VPN chain on the vpn host, in order (empty without a VPN)."""
    vpn = snap.vpn
    if vpn is None:
        return []
    container = next((c for c in snap.containers if c.name == vpn.container), None)
    links: list[Check] = []

    def add(name: str, level: Level, reason: str, hint: str | None = None) -> None:
        links.append(Check("vpn", name, level, reason, None if level == "ok" else hint))

    host = next((h for h in snap.hosts if h.name == vpn.host), None)
    if host is not None and host.error:
        add("client container", "down", f"host {vpn.host} unreachable: {host.error}", host.hint)
        return links
    if container is None or container.state != "running":
        state = container.state if container else "missing"
        add(f"client container {vpn.container}", "down", f"{state} on {vpn.host}",
            "start it with `surveyctl vpn up` (`surveyctl up` creates it)")
    else:
        add(f"client container {vpn.container}", "ok", f"running on {vpn.host}")
    interface = f"interface {vpn.interface}"
    if vpn.link is None:
        add(interface, "down", vpn.link_error or f"{vpn.interface} does not exist",
            "the client has no tunnel: `surveyctl logs vpn` shows why (TLS or auth errors, "
            "the server unreachable at the profile's `remote`)")
    elif not vpn.link.up:
        add(interface, "down", f"{vpn.interface} is down", "`surveyctl logs vpn` shows why")
    else:
        add(interface, "ok", f"up, {vpn.address or 'no IPv4 address'}"
            + (f", peer {vpn.log.peer}" if vpn.log.peer else ""))
    db_host = vpn.database.rsplit(":", 1)[0]
    route = f"route to {db_host}"
    if vpn.route is None:
        add(route, "down", vpn.route_error or "no route",
            f"the VPN server must push a route to {db_host} (or add `route {db_host} "
            "255.255.255.255` to the client profile)")
    elif vpn.route.dev != vpn.interface:
        add(route, "down", f"goes via {vpn.route.dev}, not {vpn.interface}",
            f"the tunnel is not up, or the VPN server does not push a route to {db_host}")
    else:
        add(route, "ok", f"dev {vpn.route.dev}" + (f" src {vpn.route.src}" if vpn.route.src
                                                    else ""))
    tcp = f"MariaDB {vpn.database} from {vpn.host}"
    if vpn.db_error or vpn.db_tcp_s is None:
        add(tcp, "down", vpn.db_error or "not tried",
            f"nothing answers on {vpn.database} through the tunnel: check that MariaDB "
            "listens on its VPN address and that the cloud host's firewall allows the client")
    else:
        add(tcp, "ok", f"{vpn.db_server or 'a server'} greeted in {_ms(vpn.db_tcp_s)}")
    return links


def _vpn_checks(snap: Snapshot) -> Iterator[Check]:
    yield from vpn_links(snap)


def vpn_chain(snap: Snapshot) -> list[Check]:
    """`vpn check`'s chain: the links on the vpn host, then MariaDB from each app container."""
    links = vpn_links(snap)
    for app in snap.apps:
        name = f"MariaDB from {app.host}/{app.container} via {snap.db_endpoint}"
        if app.db_ok:
            links.append(Check("vpn", name, "ok", f"connect {_ms(app.db_connect_s)}, "
                               f"query {_ms(app.db_query_s)}"))
        else:
            links.append(Check(
                "vpn", name, "down", app.error or app.db_error or "no answer",
                f"the tunnel works but {app.container} does not get through the DB proxy "
                f"on {snap.db_endpoint}: check the proxy (the Nginx `stream` server on the vpn "
                f"host), that it allows {app.host}'s address, and database.user/password"))
    return links


# ---------------------------------------------------------------- JSON


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def document(snap: Snapshot) -> dict[str, Any]:
    """The `status --json` document: verdict, problems, checks and every fact."""
    data = _plain(dataclasses.asdict(snap))
    data["verdict"] = snap.level
    data["problems"] = [_plain(dataclasses.asdict(check)) for check in snap.problems]
    return data
