"""Images and the host lock over a real SSH connection (loopback sshd), local Docker."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from survey_ctl.cluster.images import ImageFact, ShipProgress, ensure_images, remote_images, ship
from survey_ctl.errors import HostError
from tests.unit.test_remote_docker import _docker_and_busybox

pytestmark = [pytest.mark.skipif(not _docker_and_busybox(),
                                 reason="needs a Docker Engine and busybox-static"),
              pytest.mark.timeout(180)]
IMAGE = "surveyctl-test/ship:1"
MISSING = "surveyctl-test/nosuch-image:1"


@pytest.fixture
def conn(tmp_path: Path):
    from survey_ctl.remote.ssh import connect
    from tests.sshd import SSHServer, ssh_host

    rootfs = tmp_path / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    shutil.copy(shutil.which("busybox"), rootfs / "bin" / "busybox")
    tar = subprocess.run(["tar", "-C", str(rootfs), "-c", "."], capture_output=True, check=True)
    subprocess.run(["docker", "import", "-c", "USER 4242:4343", "-", IMAGE], input=tar.stdout,
                   capture_output=True, check=True)
    server = SSHServer(tmp_path / "sshd").start()
    known = tmp_path / "known_hosts"
    known.write_text(server.known_hosts_line())
    connection = connect(ssh_host(server, known))
    yield connection
    connection.close()
    server.stop()
    subprocess.run(["docker", "image", "rm", IMAGE], capture_output=True)


def test_remote_images_ship_and_a_clear_error(conn) -> None:
    local = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", IMAGE],
                           capture_output=True, text=True, check=True).stdout.strip()
    assert remote_images(conn, [IMAGE, MISSING]) == {IMAGE: ImageFact(local, "4242:4343"),
                                                     MISSING: None}
    with ShipProgress() as progress:
        ship(conn, [IMAGE], progress)  # docker save here | docker load there
        assert ensure_images(conn, {IMAGE: ImageFact(local)}, {IMAGE: local}, progress) == (
            {IMAGE: ImageFact(local)}, [])
        with pytest.raises(HostError) as caught:
            ensure_images(conn, {MISSING: None}, {}, progress)
    message = caught.value.message
    assert message.startswith(f"h1: image {MISSING} is not on the host, the host cannot pull")
    assert "this machine's Docker has no such image" in message


def test_host_lock_serialises_runs(conn, tmp_path: Path) -> None:
    """A second holder waits; it times out with a clear error; it gets the lock once free."""
    import threading
    import time

    from survey_ctl.cluster.lock import host_lock

    state = str(tmp_path / "state" / "pesquisa")
    said: list[str] = []
    with host_lock(conn, state, said.append):
        with pytest.raises(HostError) as caught, host_lock(conn, state, said.append, wait=1):
            pass
        assert "could not take the lock" in caught.value.message
        got = threading.Event()

        def second() -> None:
            with host_lock(conn, state, said.append, wait=30):
                got.set()

        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(2.5)
        assert not got.is_set()
    thread.join(timeout=30)
    assert got.is_set()
    assert "waiting for another surveyctl run on this host to finish" in said


def test_ship_through_openssh_falls_back_to_paramiko(conn, monkeypatch, capfd) -> None:
    """OpenSSH carries the stream when it can; an ssh client that cannot connect, or none
    at all, leaves it to the paramiko connection. Each time the image arrives."""
    from survey_ctl.cluster import images
    from survey_ctl.remote.ssh import openssh_argv

    used: list[list[str]] = []
    through = images._through_openssh
    monkeypatch.setattr(images, "_through_openssh",
                        lambda argv, chunks: used.append(argv) or through(argv, chunks))
    with ShipProgress() as progress:
        ship(conn, [IMAGE], progress)
        assert [argv[0] for argv in used] == ["ssh"]
        monkeypatch.setattr(images, "openssh_argv", lambda host, command: [
            "1" if part == str(host.ssh.port) else part for part in openssh_argv(host, command)])
        ship(conn, [IMAGE], progress)  # port 1: ssh exits 255, paramiko ships
        assert len(used) == 2
        assert "the ssh client could not ship the image" in capfd.readouterr().err
        which = shutil.which
        monkeypatch.setattr(images.shutil, "which",
                            lambda name: None if name == "ssh" else which(name))
        ship(conn, [IMAGE], progress)
        assert len(used) == 2


@pytest.fixture
def shell_image(tmp_path: Path) -> str:
    """A busybox image with sh, sleep, test and touch (for health checks)."""
    name = "surveyctl-test/health:1"
    rootfs = tmp_path / "health-rootfs"
    (rootfs / "bin").mkdir(parents=True)
    (rootfs / "tmp").mkdir()
    shutil.copy(shutil.which("busybox"), rootfs / "bin" / "busybox")
    for applet in ("sh", "sleep", "test", "touch"):
        (rootfs / "bin" / applet).symlink_to("busybox")
    tar = subprocess.run(["tar", "-C", str(rootfs), "-c", "."], capture_output=True, check=True)
    subprocess.run(["docker", "import", "-", name], input=tar.stdout, capture_output=True,
                   check=True)
    yield name
    subprocess.run(["docker", "image", "rm", "-f", name], capture_output=True)


def test_healthy_waits_on_docker_events_not_polls(conn, shell_image, monkeypatch) -> None:
    """A container turns healthy 2 s in: `healthy` sees it at once, reading the states
    only when Docker reports something; one that dies is reported without waiting."""
    import threading
    import time
    from types import SimpleNamespace

    from survey_ctl.cluster import verify
    from survey_ctl.specs.container import ContainerSpec, Healthcheck

    cluster = f"hc{time.time_ns() % 10**8}"
    reads: list[float] = []
    listed = verify.list_containers
    monkeypatch.setattr(verify, "list_containers",
                        lambda c, name: reads.append(time.monotonic()) or listed(c, name))

    def run(name: str, *argv: str) -> None:
        subprocess.run(["docker", "run", "-d", "--name", name, "--label",
                        f"surveyctl.cluster={cluster}", "--health-cmd", "test -e /tmp/ok",
                        "--health-interval", "1s", *argv, shell_image, "sleep", "30"],
                       capture_output=True, check=True)

    names = [f"{cluster}-ok", f"{cluster}-dies"]
    try:
        run(names[0])
        threading.Timer(2.0, lambda: subprocess.run(
            ["docker", "exec", names[0], "touch", "/tmp/ok"], capture_output=True)).start()
        started = time.monotonic()
        checks = verify.healthy(conn, SimpleNamespace(cluster=cluster),
                                [ContainerSpec(names[0], shell_image,
                                               healthcheck=Healthcheck(("CMD",), 1, 1, 3))], 30)
        took = time.monotonic() - started
        assert [(c.what, c.ok) for c in checks] == [(names[0], True)]
        assert 2.0 <= took < 5.0, took
        assert len(reads) <= 2 * took + 2, reads  # woken by events, not every 0.25 s

        run(names[1], "--entrypoint", "sh")  # `sh sleep 30`: exits at once
        checks = verify.healthy(conn, SimpleNamespace(cluster=cluster),
                                [ContainerSpec(names[1], shell_image,
                                               healthcheck=Healthcheck(("CMD",), 1, 1, 3))], 30)
        assert [(c.what, c.ok) for c in checks] == [(names[1], False)]
        assert checks[0].detail.startswith("exited"), checks[0].detail
    finally:
        subprocess.run(["docker", "rm", "-f", *names], capture_output=True)
