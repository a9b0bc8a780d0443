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
