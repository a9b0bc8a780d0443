"""The fan-out lab's pure pieces: names, addresses, labels, topology; the main lab unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from survey_ctl.errors import UsageError
from survey_ctl.lab import spec
from survey_ctl.lab.fanout import VM_PY_IMAGE, Fanout, default_dir


def test_names_subnet_and_hosts_are_its_own() -> None:
    f = Fanout(24)
    assert (f.name, f.prefix, f.network, f.subnet) == (
        "fanout24", "surveyctl-fanout24", "surveyctl-fanout24-net", "172.31.124.0/24")
    names = [h.name for h in f.hosts]
    assert names[0] == "lb" and names[-1] == "cloud" and len(names) == 26
    assert [h.address for h in f.hosts[:3]] == ["172.31.124.10", "172.31.124.11",
                                                 "172.31.124.12"]
    assert f.hosts[-1].address == "172.31.124.5" and f.gateway == "172.31.124.1"
    assert f.hosts[1].container == "surveyctl-fanout24-app1"
    assert f.hosts[1].volume == "surveyctl-fanout24-app1-data"
    assert f.labels == {spec.LABEL: "surveyctl-fanout24"} != {spec.LABEL: spec.LAB_NAME}
    assert default_dir(f) == Path(".lab-fanout24")
    assert Fanout(12).subnet != f.subnet  # 12 and 24 can exist together


def test_refuses_bad_variants() -> None:
    for bad in (dict(app_hosts=0), dict(app_hosts=151), dict(app_hosts=2, name="lab"),
                dict(app_hosts=2, name="Fan-Out"),
                dict(app_hosts=2, subnet="172.31.56.0/24")):
        with pytest.raises(UsageError):
            Fanout(**bad)


def test_topology_has_every_app_host(tmp_path: Path) -> None:
    topo = Fanout(3, name="tiny", subnet="172.31.200.0/24").topology(tmp_path, Path("/repo"))
    assert topo["cluster"] == "tiny"
    assert [h["name"] for h in topo["hosts"]] == ["lb", "app1", "app2", "app3"]
    assert topo["hosts"][0]["roles"] == ["lb", "vpn", "redis"]
    assert topo["ssh"]["identity_file"] == str(tmp_path / "id_ed25519")
    assert topo["vpn"]["client_config"] == str(tmp_path / "client.ovpn")


def test_main_lab_is_unchanged() -> None:
    assert spec.SUBNET == "172.31.56.0/24" and spec.NETWORK == "surveyctl-lab-net"
    assert [(h.name, h.address) for h in spec.HOSTS] == [
        ("lb", "172.31.56.10"), ("app1", "172.31.56.11"), ("app2", "172.31.56.12"),
        ("cloud", "172.31.56.20")]
    assert VM_PY_IMAGE not in spec.IMAGES and VM_PY_IMAGE.tag != spec.VM_IMAGE.tag
    assert "python3-requests" not in spec.VM_IMAGE.rootfs.packages


def test_credentials_name_this_labs_cloud(tmp_path: Path) -> None:
    from survey_ctl.lab.fanout import _credentials

    f = Fanout(3, name="tiny", subnet="172.31.200.0/24")
    _credentials(tmp_path, f, tmp_path / "hosts")
    assert "remote 172.31.200.5 1194" in (tmp_path / "client.ovpn").read_text()
    for name in ("lb", "app3", "cloud"):
        assert (tmp_path / "hosts" / name / "authorized_keys").read_text().startswith(
            "ssh-ed25519 ")
    assert (tmp_path / "hosts" / "cloud" / "setup.sql").stat().st_mode & 0o777 == 0o600
