"""Verdict rules and the JSON document of survey_ctl.checks.snapshot (pure)."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

from survey_ctl.checks import Check, Snapshot, document, vpn_chain
from survey_ctl.checks.facts import (
    AppProbe,
    BackendFacts,
    BalancerFacts,
    ContainerFacts,
    HostFacts,
    HttpProbe,
    LinkStats,
    RedisFacts,
    Route,
    VpnFacts,
    VpnLog,
)

NOW = datetime(2026, 12, 3, 20, 0, 0, tzinfo=UTC)


def _container(host: str, name: str, role: str, image: str) -> ContainerFacts:
    return ContainerFacts(host, name, role, "running", "healthy", image, "sha256:1",
                          datetime(2026, 12, 3, 19, 0, 0, tzinfo=UTC), 3600.0, 0)


def healthy_snapshot() -> Snapshot:
    """The seed's cluster, everything fine."""
    served = ["app1-app-1", "app2-app-1"] * 2
    return Snapshot(
        cluster="pesquisa", taken_at=NOW, elapsed_s=0.42, database="10.8.0.1:3306",
        db_endpoint="172.31.56.10:3306", db_via="vpn", latest_migration=2,
        hosts=(
            HostFacts("lb", "172.31.56.10", ("lb", "vpn", "redis"), connect_s=0.12,
                      latency_s=0.004, docker_version="20.10.24+dfsg1"),
            HostFacts("app1", "172.31.56.11", ("app",), connect_s=0.11, latency_s=0.005,
                      docker_version="20.10.24+dfsg1"),
            HostFacts("app2", "172.31.56.12", ("app",), connect_s=None, latency_s=0.006,
                      docker_version="20.10.24+dfsg1"),
        ),
        containers=(
            _container("lb", "pesquisa-redis", "redis", "surveyctl-lab/redis:latest"),
            dataclasses.replace(_container("lb", "pesquisa-vpn", "vpn",
                                           "surveyctl-lab/openvpn:latest"), uptime_s=86400.0),
            _container("lb", "pesquisa-nginx", "nginx", "surveyctl-lab/nginx:latest"),
            _container("app1", "pesquisa-app-1", "app", "pesquisa-app:latest"),
            dataclasses.replace(_container("app2", "pesquisa-app-1", "app",
                                           "pesquisa-app:latest"), restarts=1, uptime_s=42.0),
        ),
        balancer=BalancerFacts(
            "http://172.31.56.10:80/healthz",
            requests=tuple(HttpProbe(200, name, 0.003) for name in served),
            backends=(
                BackendFacts("172.31.56.11:8000", "app1", "pesquisa-app-1",
                             HttpProbe(200, "app1-app-1", 0.002), 2),
                BackendFacts("172.31.56.12:8000", "app2", "pesquisa-app-1",
                             HttpProbe(200, "app2-app-1", 0.002), 2),
            )),
        redis=RedisFacts("lb", "172.31.56.10:6379", 0.001, "7.0.15", 3600),
        apps=(
            AppProbe("app1", "pesquisa-app-1", 0.012, 0.001, "10.11.6-MariaDB", 2, None,
                     0.001),
            AppProbe("app2", "pesquisa-app-1", 0.014, 0.002, "10.11.6-MariaDB", 2, None,
                     0.001),
        ),
        vpn=VpnFacts(
            "lb", "pesquisa-vpn", "tun0", "10.8.0.1:3306",
            link=LinkStats("tun0", ("POINTOPOINT", "UP", "LOWER_UP"), 12345, 23456, 67, 89),
            address="10.8.0.2/24", route=Route("tun0", None, "10.8.0.2"),
            log=VpnLog("172.31.56.20:1194", datetime(2026, 12, 3, 19, 0, 0, tzinfo=UTC), True,
                       "Initialization Sequence Completed"),
            db_tcp_s=0.003, db_server="10.11.6-MariaDB-0+deb12u1"),
    ).assessed()


def changed(snap: Snapshot, **changes) -> Snapshot:
    """`snap` with some facts replaced, re-assessed."""
    return dataclasses.replace(snap, **changes).assessed()


def levels(snap: Snapshot) -> dict[tuple[str, str], str]:
    return {(c.section, c.name): c.level for c in snap.checks}


def test_healthy_cluster_is_all_ok() -> None:
    snap = healthy_snapshot()
    assert snap.level == "ok"
    assert snap.problems == []
    assert [(c.section, c.name) for c in snap.checks] == [
        ("hosts", "lb"), ("hosts", "app1"), ("hosts", "app2"),
        ("containers", "pesquisa-redis"), ("containers", "pesquisa-vpn"),
        ("containers", "pesquisa-nginx"), ("containers", "pesquisa-app-1"),
        ("containers", "pesquisa-app-1"),
        ("balancer", "nginx"), ("balancer", "app1 172.31.56.11:8000"),
        ("balancer", "app2 172.31.56.12:8000"),
        ("redis", "server 172.31.56.10:6379"), ("redis", "from app1/pesquisa-app-1"),
        ("redis", "from app2/pesquisa-app-1"),
        ("database", "from app1/pesquisa-app-1"), ("database", "from app2/pesquisa-app-1"),
        ("vpn", "client container pesquisa-vpn"), ("vpn", "interface tun0"),
        ("vpn", "route to 10.8.0.1"), ("vpn", "MariaDB 10.8.0.1:3306 from lb"),
    ]
    reasons = {c.name: c.reason for c in snap.checks}
    assert reasons["lb"] == "ssh 4 ms, docker 20.10.24+dfsg1"
    assert reasons["nginx"] == "4/4 requests to http://172.31.56.10:80/healthz answered"
    assert reasons["app1 172.31.56.11:8000"] == (
        "app1-app-1 answered 200 in 2 ms; 2/4 through nginx")
    assert snap.section("redis")[1].reason == "PONG in 1 ms"
    assert snap.section("database")[0].reason == "connect 12 ms, query 1 ms, migration 0002"
    assert reasons["interface tun0"] == "up, 10.8.0.2/24, peer 172.31.56.20:1194"
    assert reasons["MariaDB 10.8.0.1:3306 from lb"] == (
        "10.11.6-MariaDB-0+deb12u1 greeted in 3 ms")


def test_unreachable_host_is_down_with_its_hint() -> None:
    snap = healthy_snapshot()
    hosts = (dataclasses.replace(snap.hosts[0], error="no route to 172.31.56.10:22",
                                 hint="check the address"), *snap.hosts[1:])
    bad = changed(snap, hosts=hosts)
    assert bad.level == "down"
    assert bad.problems[0] == Check("hosts", "lb", "down", "no route to 172.31.56.10:22",
                                    "check the address")
    # The VPN chain stops at the host.
    assert [c.name for c in bad.section("vpn")] == ["client container"]


def test_slow_ssh_is_degraded() -> None:
    snap = healthy_snapshot()
    slow = changed(snap, hosts=(dataclasses.replace(snap.hosts[0], latency_s=1.5),
                                *snap.hosts[1:]))
    assert slow.level == "degraded"
    assert slow.problems[0].reason == "slow: a trivial command took 1.5 s"


def test_container_verdicts() -> None:
    snap = healthy_snapshot()

    def one(**facts) -> Check:
        container = dataclasses.replace(snap.containers[3], **facts)
        return changed(snap, containers=(container,)).section("containers")[0]

    assert one(state="missing").reason == "missing"
    assert one(state="missing").hint == "`surveyctl up` creates it"
    exited = one(state="exited", exit_code=1, health=None)
    assert (exited.level, exited.reason) == ("down", "exited (exit 1)")
    assert one(state="restarting", restarts=5).reason == "restarting (restarted 5 times)"
    assert (one(health="unhealthy").level, one(health="starting").level) == ("down", "degraded")
    assert one(health=None).reason == "running"
    stray = one(expected=False)
    assert (stray.level, stray.reason) == ("degraded", "not in the topology")


def test_balancer_verdicts() -> None:
    snap = healthy_snapshot()
    lb = snap.balancer
    failing = HttpProbe(error="cannot connect to 172.31.56.12:8000: Connect failed")
    some = changed(snap, balancer=dataclasses.replace(
        lb, requests=(*lb.requests[:3], HttpProbe(502, None, 0.01)),
        backends=(lb.backends[0], dataclasses.replace(lb.backends[1], direct=failing))))
    assert levels(some)[("balancer", "nginx")] == "degraded"
    assert some.section("balancer")[0].reason.endswith("answered (HTTP 502)")
    assert levels(some)[("balancer", "app2 172.31.56.12:8000")] == "down"
    assert some.section("balancer")[2].reason == (
        "direct request failed: cannot connect to 172.31.56.12:8000: Connect failed; "
        "2/4 through nginx")
    none = changed(snap, balancer=dataclasses.replace(lb, requests=(failing,) * 4))
    assert levels(none)[("balancer", "nginx")] == "down"
    gone = changed(snap, balancer=BalancerFacts(lb.url, error="host lb unreachable"))
    assert gone.section("balancer") == [Check("balancer", "nginx", "down", "host lb unreachable")]


def test_database_and_redis_from_the_apps() -> None:
    snap = healthy_snapshot()
    cut = dataclasses.replace(snap.apps[1], db_connect_s=None, db_query_s=None,
                              db_error="OperationalError: (2013, 'Lost connection')")
    bad = changed(snap, apps=(snap.apps[0], cut))
    check = bad.section("database")[1]
    assert (check.level, check.reason) == ("down", "OperationalError: (2013, 'Lost connection')")
    assert "surveyctl vpn check" in check.hint
    behind = changed(snap, apps=(dataclasses.replace(snap.apps[0], migration=1), snap.apps[1]))
    check = behind.section("database")[0]
    assert (check.level, check.hint) == ("degraded",
                                         "apply the pending migrations: surveyctl db-migrate")
    assert check.reason == "connect 12 ms, query 1 ms, migration 0001; newest file is 0002"
    never = changed(snap, apps=(dataclasses.replace(snap.apps[0], migration=None),))
    assert never.section("database")[0].reason.endswith("migration none; newest file is 0002")
    broken = changed(snap, apps=(AppProbe("app1", "pesquisa-app-1",
                                          error="No such container: pesquisa-app-1"),))
    assert [(c.section, c.level, c.reason) for c in broken.checks
            if c.section in ("redis", "database") and c.name.startswith("from")] == [
        ("redis", "down", "No such container: pesquisa-app-1"),
        ("database", "down", "No such container: pesquisa-app-1")]
    redis_down = changed(snap, redis=RedisFacts("lb", "172.31.56.10:6379",
                                                error="Redis answered: WRONGPASS"))
    assert redis_down.problems[0].reason == "Redis answered: WRONGPASS"


def test_vpn_chain_names_the_first_broken_link() -> None:
    snap = healthy_snapshot()
    assert [c.level for c in vpn_chain(snap)] == ["ok"] * 6
    assert vpn_chain(snap)[-1].name == (
        "MariaDB from app2/pesquisa-app-1 via 172.31.56.10:3306")
    stopped = dataclasses.replace(snap.containers[1], state="exited", exit_code=0,
                                  health=None, uptime_s=None)
    vpn = dataclasses.replace(snap.vpn, link=None, link_error='Device "tun0" does not exist.',
                              address=None, route=Route("eth0", "172.31.56.1", "172.31.56.10"),
                              db_tcp_s=None, db_server=None,
                              db_error="not tried: the route to 10.8.0.1 does not go through "
                              "tun0")
    down = changed(snap, containers=(*snap.containers[:1], stopped, *snap.containers[2:]),
                   vpn=vpn)
    chain = vpn_chain(down)
    assert [(c.name, c.level) for c in chain[:4]] == [
        ("client container pesquisa-vpn", "down"), ("interface tun0", "down"),
        ("route to 10.8.0.1", "down"), ("MariaDB 10.8.0.1:3306 from lb", "down")]
    assert chain[0].reason == "exited on lb"
    assert chain[0].hint == "start it with `surveyctl vpn up` (`surveyctl up` creates it)"
    assert chain[2].reason == "goes via eth0, not tun0"
    container = down.section("containers")[1]
    assert container.hint.startswith("start it with `surveyctl vpn up`")
    no_route = changed(snap, vpn=dataclasses.replace(snap.vpn, route=None,
                                                     route_error="Network is unreachable"))
    assert next(c for c in vpn_chain(no_route) if not c.ok).hint.startswith(
        "the VPN server must push a route to 10.8.0.1")


def test_json_document() -> None:
    snap = healthy_snapshot()
    data = json.loads(json.dumps(document(snap)))
    assert data["verdict"] == "ok"
    assert data["problems"] == []
    assert data["taken_at"] == "2026-12-03T20:00:00+00:00"
    assert data["hosts"][0] == {
        "name": "lb", "address": "172.31.56.10", "roles": ["lb", "vpn", "redis"],
        "error": None, "hint": None, "connect_s": 0.12, "latency_s": 0.004,
        "docker_version": "20.10.24+dfsg1"}
    assert data["vpn"]["link"]["rx_bytes"] == 12345
    assert data["vpn"]["log"]["connected_at"] == "2026-12-03T19:00:00+00:00"
    assert data["checks"][0] == {"section": "hosts", "name": "lb", "level": "ok",
                                 "reason": "ssh 4 ms, docker 20.10.24+dfsg1", "hint": None}
    assert set(data) == {"cluster", "taken_at", "elapsed_s", "database", "db_endpoint",
                         "db_via", "latest_migration", "hosts", "containers", "balancer",
                         "redis", "apps", "vpn", "checks", "verdict", "problems"}
    bad = changed(snap, redis=RedisFacts("lb", "x:1", error="refused"))
    data = document(bad)
    assert data["verdict"] == "down"
    assert data["problems"] == [{"section": "redis", "name": "server x:1", "level": "down",
                                 "reason": "refused",
                                 "hint": "check the redis container on lb and redis.password"}]
