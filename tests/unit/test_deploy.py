"""Pure parts of `surveyctl deploy`: release tags and records, the stand-in spec, nginx."""

from __future__ import annotations

from pathlib import Path

import pytest

from survey_ctl.cluster.deploy import KEEP, Releases, release_tag
from survey_ctl.errors import UsageError
from survey_ctl.specs import app_specs, nginx_spec
from survey_ctl.specs.cluster import next_app_spec
from survey_ctl.specs.container import PortBinding
from tests.unit.test_specs import make_topology


def test_release_tag(tmp_path: Path) -> None:
    topo = make_topology(tmp_path)
    assert release_tag(topo, "1.4.2") == "pesquisa-app:1.4.2"
    assert release_tag(topo, None, now=0) == "pesquisa-app:r19700101-000000"
    registry = make_topology(tmp_path / "r", lambda d: d["app"].update(
        image="registry.example:5000/team/app"))
    assert release_tag(registry, "v2") == "registry.example:5000/team/app:v2"


def test_releases_record_keeps_the_previous_ones_and_their_ids() -> None:
    releases = Releases.parse(b"")
    for n in range(1, 6):
        releases = releases.after(f"app:v{n}", f"sha256:{n}")
    assert releases.current == "app:v5"
    assert releases.previous == ["app:v4", "app:v3", "app:v2", "app:v1"]
    assert releases.ids["app:v5"] == "sha256:5"
    assert releases.dropped() == ["app:v2", "app:v1"][: len(releases.previous) - KEEP + 1]
    again = releases.after("app:v3", "sha256:3")  # a redeploy moves it to the front
    assert (again.current, again.previous[:2]) == ("app:v3", ["app:v5", "app:v4"])
    assert Releases.parse(b"not json") == Releases()


def test_before_the_first_deploy_the_release_is_what_up_runs() -> None:
    baseline = Releases().or_baseline("app:latest", "sha256:0")
    assert baseline == Releases("app:latest", [], {"app:latest": "sha256:0"})
    after = baseline.after("app:v1", "sha256:1")  # so `rollback` has somewhere to go
    assert (after.current, after.previous) == ("app:v1", ["app:latest"])
    assert after.ids == {"app:latest": "sha256:0", "app:v1": "sha256:1"}
    recorded = Releases("app:v1", ["app:v0"], {})
    assert recorded.or_baseline("app:latest", "sha256:0") is recorded  # deploys on record
    assert Releases().or_baseline("app:latest", None) == Releases()  # nothing runs yet


def test_a_release_tag_may_not_change_its_image() -> None:
    releases = Releases().after("app:v1", "sha256:1")
    releases.check_immutable("app:v1", "sha256:1")
    releases.check_immutable("app:v2", "sha256:2")
    with pytest.raises(UsageError, match="a release tag must not change"):
        releases.check_immutable("app:v1", "sha256:9")


def test_stand_in_spec_is_the_replica_on_the_next_port(tmp_path: Path) -> None:
    topo = make_topology(tmp_path)
    [spec] = app_specs(topo, topo.host("app1"), "pesquisa-app:v2")
    stand_in = next_app_spec(topo, spec, 1)
    assert spec.image == stand_in.image == "pesquisa-app:v2"
    assert stand_in.name == "pesquisa-app-1-next"
    assert stand_in.ports == (PortBinding("192.168.56.11", 8100, 8000),)
    assert stand_in.env == spec.env and stand_in.hash_label != spec.hash_label


def test_nginx_spec_with_the_live_backends(tmp_path: Path) -> None:
    topo = make_topology(tmp_path)
    live = ["192.168.56.11:8100", "192.168.56.12:8000"]
    conf = nginx_spec(topo, live).config_files["nginx.conf"].content
    assert "server 192.168.56.11:8100 max_fails=1 fail_timeout=5s;" in conf
    assert "server 192.168.56.11:8000 " not in conf
    assert nginx_spec(topo) == nginx_spec(topo, None)
