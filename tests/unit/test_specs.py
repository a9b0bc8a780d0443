"""Pure container-spec builders, checked by exact equality against a real loaded topology."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr

from survey_ctl.config import Topology, load_topology
from survey_ctl.specs import (
    ConfigFile,
    ContainerSpec,
    Healthcheck,
    Mount,
    PortBinding,
    SecretFile,
    app_specs,
    canonical_json,
    cluster_specs,
    dbproxy_spec,
    describe,
    firewall_jump,
    firewall_marker,
    firewall_rules,
    nginx_spec,
    redis_spec,
    render_nginx_conf,
    spec_hash,
    vpn_spec,
    with_hash,
)

ENV = {"SURVEY_SECRET_KEY": "k" * 32, "SURVEY_REDIS_PASSWORD": "redis-pw",
       "SURVEY_DB_PASSWORD": "db-pw"}

SEED: dict[str, Any] = {
    "cluster": "pesquisa",
    "ssh": {"user": "deploy", "identity_file": "id_ed25519", "known_hosts": "known_hosts"},
    "hosts": [
        {"name": "lb", "address": "192.168.56.10", "roles": ["lb", "vpn", "redis"]},
        {"name": "app1", "address": "192.168.56.11", "roles": ["app"]},
        {"name": "app2", "address": "192.168.56.12", "roles": ["app"], "ssh": {"port": 2222}},
    ],
    "app": {"image": "pesquisa-app:latest", "replicas": 1, "port": 8000,
            "env": {"SURVEY_SECRET_KEY": "${SURVEY_SECRET_KEY}"},
            "healthcheck": {"path": "/healthz", "interval": 2, "timeout": 2, "retries": 15}},
    "lb": {"image": "nginx:1.27-alpine", "port": 80, "algorithm": "least_conn"},
    "redis": {"image": "redis:7-alpine", "port": 6379, "password": "${SURVEY_REDIS_PASSWORD}"},
    "database": {"host": "10.8.0.1", "port": 3306, "name": "survey", "user": "survey",
                 "password": "${SURVEY_DB_PASSWORD}", "via": "vpn"},
    "vpn": {"client_config": "client.ovpn", "image": "surveyctl/openvpn:latest",
            "interface": "tun0"},
}


def make_topology(folder: Path, change=None) -> Topology:
    """The seed topology (`change(data)` may edit it first), loaded by the real loader."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in {"id_ed25519": "not read by the builders\n", "known_hosts": "",
                       "client.ovpn": "client\ndev tun\nremote 203.0.113.9 1194\n"}.items():
        (folder / name).write_text(text)
    data = copy.deepcopy(SEED)
    if change:
        change(data)
    path = folder / "surveyctl.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_topology(path, environ=ENV)


@pytest.fixture
def topo(tmp_path: Path) -> Topology:
    return make_topology(tmp_path)


PROFILE = SecretStr("client\n<key>profile-secret-marker</key>\n")


def _labels(role: str, spec: ContainerSpec) -> dict[str, str]:
    return {"surveyctl.cluster": "pesquisa", "surveyctl.role": role,
            "surveyctl.spec-hash": spec_hash(spec)}


def test_app_specs(topo: Topology) -> None:
    [spec] = app_specs(topo, topo.host("app2"))
    probe = ("import sys, urllib.request; urllib.request.urlopen("
             "'http://127.0.0.1:8000/healthz', timeout=2); sys.exit(0)")
    assert spec == ContainerSpec(
        name="pesquisa-app-1",
        image="pesquisa-app:latest",
        env={
            "GUNICORN_BIND": "0.0.0.0:8000",
            "SURVEY_DB_HOST": "192.168.56.10",
            "SURVEY_DB_NAME": "survey",
            "SURVEY_DB_PASSWORD_FILE": "/run/secrets/survey_db_password",
            "SURVEY_DB_PORT": "3306",
            "SURVEY_DB_USER": "survey",
            "SURVEY_REDIS_HOST": "192.168.56.10",
            "SURVEY_REDIS_PASSWORD_FILE": "/run/secrets/survey_redis_password",
            "SURVEY_REDIS_PORT": "6379",
            "SURVEY_SECRET_KEY_FILE": "/run/secrets/survey_secret_key",
            "SURVEY_SERVED_BY": "app2-app-1",
            "SURVEY_TRUST_PROXY_HOPS": "1",
        },
        secret_files={
            "survey_db_password": SecretFile("/run/secrets/survey_db_password",
                                             SecretStr("db-pw")),
            "survey_redis_password": SecretFile("/run/secrets/survey_redis_password",
                                                SecretStr("redis-pw")),
            "survey_secret_key": SecretFile("/run/secrets/survey_secret_key",
                                            SecretStr("k" * 32)),
        },
        ports=(PortBinding("192.168.56.12", 8000, 8000),),
        network="pesquisa",
        network_aliases=("app-1",),
        restart="unless-stopped",
        healthcheck=Healthcheck(("CMD", "python3", "-c", probe), 2.0, 2.0, 15),
        labels=_labels("app", spec),
    )


def test_replicas_publish_consecutive_ports(tmp_path: Path) -> None:
    topo = make_topology(tmp_path, lambda d: d["app"].update(replicas=3))
    specs = app_specs(topo, topo.host("app1"))
    assert [(s.name, s.ports, s.env["SURVEY_SERVED_BY"], s.network_aliases) for s in specs] == [
        ("pesquisa-app-1", (PortBinding("192.168.56.11", 8000, 8000),), "app1-app-1", ("app-1",)),
        ("pesquisa-app-2", (PortBinding("192.168.56.11", 8001, 8000),), "app1-app-2", ("app-2",)),
        ("pesquisa-app-3", (PortBinding("192.168.56.11", 8002, 8000),), "app1-app-3", ("app-3",)),
    ]


def test_direct_database_is_used_as_is(tmp_path: Path) -> None:
    def direct(data: dict) -> None:
        data["database"].update(via="direct", host="db.example.net")
        del data["vpn"]

    topo = make_topology(tmp_path, direct)
    [spec] = app_specs(topo, topo.host("app1"))
    assert (spec.env["SURVEY_DB_HOST"], spec.env["SURVEY_DB_PORT"]) == ("db.example.net", "3306")
    assert vpn_spec(topo, PROFILE) is None and dbproxy_spec(topo) is None
    assert "stream {" not in nginx_spec(topo).config_files["nginx.conf"].content


def test_redis_spec(topo: Topology) -> None:
    spec = redis_spec(topo)
    conf = ("port 6379\nbind 0.0.0.0\nprotected-mode yes\nrequirepass redis-pw\ndir /data\n"
            "appendonly yes\nappendfsync everysec\n")
    assert spec == ContainerSpec(
        name="pesquisa-redis",
        image="redis:7-alpine",
        entrypoint=("redis-server",),
        command=("/run/secrets/redis.conf",),
        secret_files={"redis.conf": SecretFile("/run/secrets/redis.conf", SecretStr(conf))},
        ports=(PortBinding("192.168.56.10", 6379, 6379),),
        volumes=(Mount("pesquisa-redis-data", "/data"),),
        network="pesquisa",
        network_aliases=("redis",),
        healthcheck=Healthcheck(("CMD-SHELL", "redis-cli -p 6379 ping | grep -qE 'PONG|NOAUTH'"),
                                2.0, 2.0, 15),
        labels=_labels("redis", spec),
    )


def test_nginx_spec(topo: Topology) -> None:
    spec = nginx_spec(topo)
    conf = "/etc/nginx/surveyctl/nginx.conf"
    assert spec == ContainerSpec(
        name="pesquisa-nginx",
        image="nginx:1.27-alpine",
        command=("nginx", "-c", conf, "-g", "daemon off;"),
        config_files={"nginx.conf": ConfigFile(
            conf, render_nginx_conf(topo), reload=("nginx", "-c", conf, "-s", "reload"),
            check=("nginx", "-t", "-q", "-c", conf))},
        ports=(PortBinding("0.0.0.0", 80, 80), PortBinding("192.168.56.10", 3306, 3306)),
        network="pesquisa",
        network_aliases=("nginx",),
        healthcheck=Healthcheck(("CMD-SHELL", 'kill -0 "$(cat /run/nginx.pid)"'), 2.0, 3.0, 3),
        labels=_labels("nginx", spec),
    )
    assert "stream {" in spec.config_files["nginx.conf"].content


def test_vpn_spec(topo: Topology) -> None:
    spec = vpn_spec(topo, PROFILE)
    profile = "/etc/openvpn/client/client.ovpn"
    assert spec == ContainerSpec(
        name="pesquisa-vpn",
        image="surveyctl/openvpn:latest",
        command=("openvpn", "--config", profile, "--dev", "tun0"),
        secret_files={"client.ovpn": SecretFile(profile, PROFILE)},
        network_mode="host",
        cap_add=("NET_ADMIN",),
        devices=("/dev/net/tun",),
        healthcheck=Healthcheck(("CMD-SHELL", 'test -n "$(ip link show dev tun0 up)"'),
                                2.0, 3.0, 15, start_period=10.0),
        labels=_labels("vpn", spec),
    )


def test_separate_vpn_host_gets_its_own_db_proxy(tmp_path: Path) -> None:
    def split(data: dict) -> None:
        data["hosts"][0]["roles"] = ["lb", "redis"]
        data["hosts"].append({"name": "gw", "address": "192.168.56.20", "roles": ["vpn"]})

    topo = make_topology(tmp_path, split)
    [app] = app_specs(topo, topo.host("app1"))
    assert app.env["SURVEY_DB_HOST"] == "192.168.56.20"
    proxy = dbproxy_spec(topo)
    assert proxy is not None
    assert (proxy.name, proxy.ports) == ("pesquisa-dbproxy",
                                         (PortBinding("192.168.56.20", 3306, 3306),))
    conf = proxy.config_files["nginx.conf"].content
    assert "stream {" in conf and "http {" not in conf
    assert "stream {" not in nginx_spec(topo).config_files["nginx.conf"].content
    specs = cluster_specs(topo, PROFILE)
    assert {h: [s.name for s in v] for h, v in specs.items()} == {
        "lb": ["pesquisa-redis", "pesquisa-nginx"],
        "app1": ["pesquisa-app-1"],
        "app2": ["pesquisa-app-1"],
        "gw": ["pesquisa-vpn", "pesquisa-dbproxy"],
    }


def test_cluster_specs(topo: Topology) -> None:
    specs = cluster_specs(topo, PROFILE)
    assert specs == {
        "lb": [redis_spec(topo), vpn_spec(topo, PROFILE), nginx_spec(topo)],
        "app1": app_specs(topo, topo.host("app1")),
        "app2": app_specs(topo, topo.host("app2")),
    }


def test_spec_hash_is_stable_and_sensitive(topo: Topology, tmp_path: Path) -> None:
    spec = redis_spec(topo)
    assert spec.hash_label == spec_hash(spec)
    assert spec_hash(with_hash(spec)) == spec_hash(spec)  # the label is not hashed
    again = redis_spec(make_topology(tmp_path / "again"))
    assert again == spec and again.hash_label == spec.hash_label
    rotated = redis_spec(make_topology(
        tmp_path / "rotated",
        lambda d: d["redis"].update(password="other-pw"),
    ))
    assert rotated.hash_label != spec.hash_label
    moved = redis_spec(make_topology(tmp_path / "moved", lambda d: d["redis"].update(port=6380)))
    assert moved.hash_label != spec.hash_label


def test_live_config_is_outside_the_hash(topo: Topology, tmp_path: Path) -> None:
    other = make_topology(tmp_path / "rr", lambda d: d["lb"].update(algorithm="ip_hash"))
    a, b = nginx_spec(topo), nginx_spec(other)
    assert a.config_files["nginx.conf"].content != b.config_files["nginx.conf"].content
    assert a.hash_label == b.hash_label  # reloaded in place, not replaced


def test_secrets_never_printed(topo: Topology) -> None:
    specs = [s for v in cluster_specs(topo, PROFILE).values() for s in v]
    shown = json.dumps([describe(s) for s in specs]) + repr(specs)
    shown += "".join(canonical_json(s) for s in specs)
    for secret in [*ENV.values(), "profile-secret-marker"]:
        assert secret not in shown
    assert describe(redis_spec(topo))["secret_files"] == {"redis.conf": "/run/secrets/redis.conf"}


def test_firewall_rules(topo: Topology) -> None:
    chain = ("iptables", "-w", "-A", "SURVEYCTL-pesquisa")

    def guard(address: str, port: int, sources: list[str]) -> list[tuple[str, ...]]:
        match = ("-p", "tcp", "-m", "conntrack", "--ctorigdst", address,
                 "--ctorigdstport", str(port), "--ctdir", "ORIGINAL")
        return [(*chain, *match, "-s", s, "-j", "RETURN") for s in sources] + [
            (*chain, *match, "-j", "DROP")]

    head = [("iptables", "-w", "-N", "SURVEYCTL-pesquisa"),
            ("iptables", "-w", "-F", "SURVEYCTL-pesquisa"),
            (*chain, "-i", "docker0", "-j", "RETURN"),
            (*chain, "-i", "br-+", "-j", "RETURN")]
    apps = ["192.168.56.11", "192.168.56.12"]

    def last(rules: list[tuple[str, ...]]) -> tuple[str, ...]:
        digest = hashlib.sha256(json.dumps(rules).encode()).hexdigest()[:16]
        return (*chain, "-m", "comment", "--comment", f"surveyctl {digest}", "-j", "RETURN")

    lb = [*head, *guard("192.168.56.10", 6379, apps), *guard("192.168.56.10", 3306, apps)]
    assert firewall_rules(topo, topo.host("lb")) == [*lb, last(lb)]
    app1 = [*head, *guard("192.168.56.11", 8000, ["192.168.56.10"]),
            *guard("192.168.56.11", 8100, ["192.168.56.10"])]
    assert firewall_rules(topo, topo.host("app1")) == [*app1, last(app1)]
    assert firewall_marker(lb) != firewall_marker(app1)
    assert firewall_jump(topo) == (
        ("iptables", "-w", "-C", "DOCKER-USER", "-j", "SURVEYCTL-pesquisa"),
        ("iptables", "-w", "-I", "DOCKER-USER", "1", "-j", "SURVEYCTL-pesquisa"),
    )


def test_firewall_rules_load_into_real_iptables(topo: Topology) -> None:
    """Applied twice in a private network namespace: accepted, and not duplicated."""
    import shlex

    from tests.unit.netns import in_network_namespace

    rules = firewall_rules(topo, topo.host("lb"))
    check, insert = firewall_jump(topo)
    once = "; ".join([f"{shlex.join(rules[0])} 2>/dev/null || true",
                      *(f"{shlex.join(r)} || exit 1" for r in rules[1:]),
                      f"{shlex.join(check)} 2>/dev/null || {shlex.join(insert)} || exit 1"])
    script = (f"iptables -w -N DOCKER-USER || exit 1; {once}; {once}; "
              "iptables -w -S SURVEYCTL-pesquisa; iptables -w -S DOCKER-USER")
    done = in_network_namespace(script)
    assert done.returncode == 0, done.stderr
    shown = done.stdout.splitlines()
    assert shown.count("-A DOCKER-USER -j SURVEYCTL-pesquisa") == 1
    chain = [line for line in shown if line.startswith("-A SURVEYCTL-pesquisa")]

    def guard(port: int) -> list[str]:
        match = (f"-p tcp -m conntrack --ctorigdst 192.168.56.10 --ctorigdstport {port} "
                 "--ctdir ORIGINAL")
        return [f"-A SURVEYCTL-pesquisa -s 192.168.56.11/32 {match} -j RETURN",
                f"-A SURVEYCTL-pesquisa -s 192.168.56.12/32 {match} -j RETURN",
                f"-A SURVEYCTL-pesquisa {match} -j DROP"]

    assert chain == [
        "-A SURVEYCTL-pesquisa -i docker0 -j RETURN",
        "-A SURVEYCTL-pesquisa -i br-+ -j RETURN",
        *guard(6379),
        *guard(3306),
        f'-A SURVEYCTL-pesquisa -m comment --comment "{firewall_marker(rules[:-1])}" -j RETURN',
    ]
