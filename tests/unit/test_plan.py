"""plan(): desired specs against observed containers, by exact equality."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from pydantic import SecretStr

from survey_ctl.plan import Observed, Step, observed_from_inspect, pending, plan
from survey_ctl.specs import ContainerSpec, cluster_specs, redis_spec
from tests.unit.test_specs import make_topology

PROFILE = SecretStr("client\n")


def running(spec: ContainerSpec, image_id: str = "sha256:img", state: str = "running",
            health: str | None = "healthy") -> Observed:
    """What a host shows after `spec` was applied."""
    live = {name: c.fingerprint for name, c in spec.config_files.items() if c.reload}
    return Observed(spec.name, image_id, spec.hash_label, state, health, "pesquisa", spec.role,
                    live)


def apply(steps: list[Step]) -> dict[str, list[Observed]]:
    """The hosts after the steps, as a perfect executor leaves them."""
    hosts: dict[str, list[Observed]] = {}
    for step in steps:
        hosts.setdefault(step.host, [])
        if step.kind != "remove":
            assert step.spec is not None
            hosts[step.host].append(running(step.spec))
    return hosts


def test_empty_hosts_create_everything_then_keep(tmp_path: Path) -> None:
    topo = make_topology(tmp_path)
    desired = cluster_specs(topo, PROFILE)
    first = plan(desired, {})
    assert [(s.host, s.kind, s.container, s.reason) for s in first] == [
        ("lb", "create", "pesquisa-redis", "not on the host"),
        ("lb", "create", "pesquisa-vpn", "not on the host"),
        ("lb", "create", "pesquisa-nginx", "not on the host"),
        ("app1", "create", "pesquisa-app-1", "not on the host"),
        ("app2", "create", "pesquisa-app-1", "not on the host"),
    ]
    assert [s.spec for s in first] == [*desired["lb"], *desired["app1"], *desired["app2"]]
    second = plan(desired, apply(first))
    assert {s.kind for s in second} == {"keep"} and pending(second) == []
    assert [s.reason for s in second] == ["up to date (running)"] * 5


def test_each_kind_of_step(tmp_path: Path) -> None:
    topo = make_topology(tmp_path)
    redis = redis_spec(topo)
    changed = make_topology(tmp_path / "changed", lambda d: d["redis"].update(port=6380))
    new_redis = redis_spec(changed)
    app = cluster_specs(topo, PROFILE)["app1"][0]
    nginx = cluster_specs(topo, PROFILE)["lb"][2]
    stray = Observed("pesquisa-app-2", "sha256:img", "abc", "running", None, "pesquisa", "app")
    observed = {
        "lb": [running(redis), running(nginx, state="exited", health=None)],
        "app1": [stray, running(app, image_id="sha256:old")],
        "gone": [running(app)],
    }
    desired = {"lb": [new_redis, nginx], "app1": [app]}
    steps = plan(desired, observed, image_ids={"pesquisa-app:latest": "sha256:new"})
    assert steps == [
        Step("lb", "replace", "pesquisa-redis", "its spec changed", new_redis),
        Step("lb", "start", "pesquisa-nginx", "it is exited", nginx),
        Step("app1", "replace", "pesquisa-app-1", "image pesquisa-app:latest changed", app),
        Step("app1", "remove", "pesquisa-app-2", "no longer in the topology"),
        Step("gone", "remove", "pesquisa-app-1", "no longer in the topology"),
    ]
    assert plan(desired, {"lb": [running(new_redis, state="dead"), running(nginx)]})[0] == Step(
        "lb", "replace", "pesquisa-redis", "it is dead", new_redis)
    after = plan(desired, apply(steps), image_ids={})
    assert [s.kind for s in after] == ["keep", "keep", "keep"]


def test_observed_from_inspect() -> None:
    doc = {
        "Id": "0123",
        "Name": "/pesquisa-app-1",
        "Image": "sha256:abc",
        "Config": {"Labels": {"surveyctl.cluster": "pesquisa", "surveyctl.role": "app",
                              "surveyctl.spec-hash": "f00"}},
        "State": {"Status": "running", "Running": True, "Health": {"Status": "healthy"}},
    }
    assert observed_from_inspect(doc) == Observed(
        "pesquisa-app-1", "sha256:abc", "f00", "running", "healthy", "pesquisa", "app")
    bare = {"Name": "/x", "Image": "sha256:1", "Config": {"Labels": None},
            "State": {"Status": "exited"}}
    assert observed_from_inspect(bare) == Observed("x", "sha256:1", None, "exited")


def test_unlabelled_container_with_our_name_is_replaced(tmp_path: Path) -> None:
    spec = redis_spec(make_topology(tmp_path))
    foreign = dataclasses.replace(running(spec), spec_hash=None)
    assert plan({"lb": [spec]}, {"lb": [foreign]}) == [
        Step("lb", "replace", "pesquisa-redis", "its spec changed", spec)]


def test_changed_live_config_is_reloaded_not_replaced(tmp_path: Path) -> None:
    topo = make_topology(tmp_path)
    other = make_topology(tmp_path / "ip_hash", lambda d: d["lb"].update(algorithm="ip_hash"))
    [old] = [s for s in cluster_specs(topo, PROFILE)["lb"] if s.role == "nginx"]
    [new] = [s for s in cluster_specs(other, PROFILE)["lb"] if s.role == "nginx"]
    assert plan({"lb": [new]}, {"lb": [running(old)]}) == [
        Step("lb", "reload", "pesquisa-nginx", "nginx.conf changed", new)]
    unknown = dataclasses.replace(running(new), config_hashes={})
    assert plan({"lb": [new]}, {"lb": [unknown]})[0].kind == "reload"
    assert plan({"lb": [new]}, {"lb": [running(new)]})[0].kind == "keep"
