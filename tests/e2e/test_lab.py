"""`surveyctl lab`: four real machines with sshd, Docker Engines, OpenVPN and MariaDB.

Traffic goes only to the lab's own addresses (172.31.56.0/24, and 10.8.0.1 through the
tunnel) and to loopback.
"""

from __future__ import annotations

import hashlib
import stat
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml

from tests.e2e.conftest import ADDRESSES, Lab, surveyctl

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

VMS = ("lb", "app1", "app2")
OPENVPN_IMAGE = "surveyctl-lab/openvpn:latest"
PYTHON_IMAGE = "surveyctl-lab/python:3.11"
LAB_LABEL = "surveyctl.lab=surveyctl-lab"


def _docker():
    import docker

    return docker.from_env(version="auto")


def test_lab_up_writes_a_complete_topology_and_private_files(lab: Lab) -> None:
    topology = yaml.safe_load((lab.dir / "surveyctl.yaml").read_text())
    assert topology["cluster"] == "pesquisa"
    assert topology["ssh"]["host_key_policy"] == "strict"
    roles = {h["name"]: h["roles"] for h in topology["hosts"]}
    assert roles == {"lb": ["lb", "vpn", "redis"], "app1": ["app"], "app2": ["app"]}
    assert topology["database"] == {
        "host": "10.8.0.1",
        "port": 3306,
        "name": "survey",
        "user": "survey",
        "password": "${SURVEY_DB_PASSWORD}",
        "via": "vpn",
    }
    assert topology["app"]["build"]["args"] == {"BASE_IMAGE": PYTHON_IMAGE}
    text = (lab.dir / "surveyctl.yaml").read_text()
    secrets = lab.env()
    assert set(secrets) >= {"SURVEY_SECRET_KEY", "SURVEY_REDIS_PASSWORD", "SURVEY_DB_PASSWORD"}
    assert not any(value in text for value in secrets.values())
    for name in (".env", "id_ed25519", "client.ovpn"):
        assert stat.S_IMODE((lab.dir / name).stat().st_mode) == 0o600, name
    profile = (lab.dir / "client.ovpn").read_text()
    assert "<tls-crypt>" in profile and "<cert>" in profile and "secret " not in profile


def test_strict_ssh_with_the_generated_key_reaches_every_host(lab: Lab, tmp_path) -> None:
    for host in ADDRESSES:
        done = lab.ssh(host, "hostname")
        assert done.returncode == 0, (host, done.stderr)
        assert done.stdout.decode().strip() == host
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    refused = lab.ssh("app1", "true", known_hosts=empty)
    assert refused.returncode != 0
    assert b"verification failed" in refused.stderr


def test_each_engine_runs_a_container(lab: Lab) -> None:
    images = {"lb": OPENVPN_IMAGE, "app1": PYTHON_IMAGE, "app2": PYTHON_IMAGE}
    with ThreadPoolExecutor(3) as pool:
        list(pool.map(lambda h: lab.load_image(h, images[h]), VMS))
    for host in VMS:
        done = lab.ssh(host, f"docker run --rm {images[host]} cat /etc/debian_version")
        assert done.returncode == 0, (host, done.stderr)
        assert done.stdout.decode().startswith("12.")


def _tcp_open(lab: Lab, host: str, address: str, port: int) -> bool:
    probe = f"timeout 5 bash -c '</dev/tcp/{address}/{port}' 2>/dev/null"
    return lab.ssh(host, probe).returncode == 0


def test_mariadb_is_not_reachable_without_the_vpn(lab: Lab) -> None:
    for host in VMS:
        assert not _tcp_open(lab, host, "10.8.0.1", 3306), host
        assert not _tcp_open(lab, host, ADDRESSES["cloud"], 3306), host  # not on the lab address
        assert _tcp_open(lab, host, ADDRESSES["cloud"], 22), host  # but cloud is there


def test_openvpn_client_on_lb_reaches_mariadb_and_logs_in(lab: Lab) -> None:
    lab.load_image("lb", OPENVPN_IMAGE)
    profile = (lab.dir / "client.ovpn").read_text()
    assert lab.ssh("lb", "umask 077 && cat > e2e-client.ovpn", stdin=profile).returncode == 0
    start = (
        "docker run -d --name e2e-vpn --network host --cap-add NET_ADMIN "
        "--device /dev/net/tun -v $HOME/e2e-client.ovpn:/etc/openvpn/client/client.ovpn:ro "
        f"{OPENVPN_IMAGE}"
    )
    try:
        done = lab.ssh("lb", start)
        assert done.returncode == 0, done.stderr
        deadline = time.monotonic() + 30
        while lab.ssh("lb", "ip -4 addr show dev tun0 | grep -q 'inet 10.8.0.'").returncode:
            assert time.monotonic() < deadline, lab.ssh("lb", "docker logs e2e-vpn").stderr
            time.sleep(0.5)
        password = lab.env()["SURVEY_DB_PASSWORD"]
        query = (
            f"docker run --rm -i --network host {OPENVPN_IMAGE} sh -c 'cat > /tmp/my.cnf && "
            "mariadb --defaults-extra-file=/tmp/my.cnf -h 10.8.0.1 -N -B "
            '-e "SELECT CURRENT_USER(), DATABASE()" survey\''
        )
        done = lab.ssh("lb", query, stdin=f"[client]\nuser=survey\npassword={password}\n")
        assert done.returncode == 0, done.stderr
        assert done.stdout.decode().split() == ["survey@%", "survey"]
        wrong = lab.ssh("lb", query, stdin="[client]\nuser=survey\npassword=wrong\n")
        assert wrong.returncode != 0 and b"Access denied" in wrong.stderr
    finally:
        lab.ssh("lb", "docker rm -f e2e-vpn; rm -f e2e-client.ovpn")


def test_stop_makes_a_host_unreachable_and_start_brings_it_back(lab: Lab) -> None:
    done = surveyctl("lab", "stop", "app2")
    assert done.returncode == 0, done.stderr
    assert lab.ssh("app2", "true", timeout=30).returncode != 0
    done = surveyctl("lab", "start", "app2")
    assert done.returncode == 0, done.stderr
    back = lab.ssh("app2", "docker info --format '{{.ServerVersion}}'")
    assert back.returncode == 0, back.stderr


def test_cut_and_heal(lab: Lab) -> None:
    assert surveyctl("lab", "cut", "app1").returncode == 0
    try:
        assert lab.ssh("app1", "true", timeout=30).returncode != 0
        assert lab.ssh("lb", "true").returncode == 0  # the others are unaffected
    finally:
        assert surveyctl("lab", "heal", "app1").returncode == 0
    assert lab.ssh("app1", "true").returncode == 0


def test_pause_freezes_a_host_and_unpause_thaws_it(lab: Lab) -> None:
    assert surveyctl("lab", "pause", "app2").returncode == 0
    try:
        assert lab.ssh("app2", "true", timeout=30).returncode != 0  # connects, no banner
    finally:
        assert surveyctl("lab", "unpause", "app2").returncode == 0
    assert lab.ssh("app2", "true").returncode == 0


def test_unknown_host_is_a_usage_error(lab: Lab) -> None:
    done = surveyctl("lab", "stop", "db9")
    assert done.returncode == 2
    assert "no lab host named" in done.stderr and "Traceback" not in done.stderr


def _snapshot(lab: Lab) -> dict:
    client = _docker()
    containers = {
        c.name: (c.id, c.attrs["State"]["StartedAt"], c.status)
        for c in client.containers.list(all=True, filters={"label": LAB_LABEL})
    }
    files = {
        str(p.relative_to(lab.dir)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime)
        for p in sorted(lab.dir.rglob("*"))
        if p.is_file()
    }
    return {"containers": containers, "files": files}


def test_second_lab_up_is_fast_and_changes_nothing(lab: Lab) -> None:
    before = _snapshot(lab)
    t0 = time.monotonic()
    done = surveyctl("lab", "up", "--dir", str(lab.dir))
    seconds = time.monotonic() - t0
    assert done.returncode == 0, done.stderr
    assert seconds < 60
    assert "surveyctl up -c" in done.stdout
    assert _snapshot(lab) == before


def test_lab_up_repairs_a_damaged_lab(lab: Lab) -> None:
    client = _docker()
    client.containers.get("surveyctl-lab-app1").remove(force=True)
    (lab.dir / "known_hosts").unlink()
    done = surveyctl("lab", "up", "--dir", str(lab.dir))
    assert done.returncode == 0, done.stderr
    assert lab.ssh("app1", "docker info --format '{{.ServerVersion}}'").returncode == 0


def _docker_objects() -> dict[str, set[str]]:
    client = _docker()
    return {
        "containers": {c.id for c in client.containers.list(all=True)},
        "networks": {n.id for n in client.networks.list()},
        "volumes": {v.name for v in client.volumes.list()},
    }


def _lab_objects() -> dict[str, set[str]]:
    client = _docker()
    only = {"label": LAB_LABEL}
    return {
        "containers": {c.id for c in client.containers.list(all=True, filters=only)},
        "networks": {n.id for n in client.networks.list(filters=only)},
        "volumes": {v.name for v in client.volumes.list(filters=only)},
    }


@pytest.mark.lab_teardown
def test_lab_down_removes_everything_it_made_and_nothing_else(lab: Lab) -> None:
    from tests.e2e.conftest import KEEP_LAB

    if KEEP_LAB:
        pytest.skip("SURVEYCTL_E2E_KEEP_LAB=1 keeps the lab")
    before, ours = _docker_objects(), _lab_objects()
    assert all(ours.values())
    images = {i.id for i in _docker().images.list()}
    done = surveyctl("lab", "down", "--dir", str(lab.dir), timeout=300)
    assert done.returncode == 0, done.stderr
    after = _docker_objects()
    assert after == {kind: before[kind] - ours[kind] for kind in before}
    assert not lab.dir.exists()
    assert {i.id for i in _docker().images.list()} == images  # cached images are kept
