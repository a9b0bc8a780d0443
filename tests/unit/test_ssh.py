"""survey_ctl.remote.ssh against a real sshd on 127.0.0.1 (tests/sshd.py)."""

from __future__ import annotations

import hashlib
import socket
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from survey_ctl.errors import HostError, HostKeyMismatch
from survey_ctl.remote.ssh import (
    HostPool,
    Result,
    connect,
    docker_problem,
    known_host_name,
)
from tests.services import free_port
from tests.sshd import SSHServer, keygen, ssh_host

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHServer]:
    """One sshd for the module's tests that do not change its host key."""
    server = SSHServer(tmp_path_factory.mktemp("sshd")).start()
    yield server
    server.stop()


@pytest.fixture
def own_sshd(tmp_path: Path) -> Iterator[SSHServer]:
    """A sshd for one test (its host key may be changed)."""
    server = SSHServer(tmp_path / "sshd").start()
    yield server
    server.stop()


@pytest.fixture
def known(sshd: SSHServer, tmp_path: Path) -> Path:
    """A known_hosts file holding the server's key."""
    path = tmp_path / "known_hosts"
    path.write_text(sshd.known_hosts_line())
    return path


def test_strict_with_known_key_runs_commands(sshd: SSHServer, known: Path) -> None:
    with connect(ssh_host(sshd, known)) as conn:
        result = conn.run(["echo", "a b", "$HOME;", "it's"])
        assert result == Result(0, b"a b $HOME; it's\n", b"")
        failed = conn.run(["sh", "-c", "echo oops >&2; exit 3"])
        assert (failed.rc, failed.stdout, failed.stderr) == (3, b"", b"oops\n")
        with pytest.raises(HostError, match=r"exit 3\): oops"):
            conn.check(["sh", "-c", "echo oops >&2; exit 3"])


def test_hashed_known_hosts_entry_is_found(sshd: SSHServer, tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    path.write_text("# comment\n" + sshd.known_hosts_line(hashed=True))
    assert path.read_text().splitlines()[1].startswith("|1|")
    with connect(ssh_host(sshd, path)) as conn:
        assert conn.run(["true"]).ok


def test_known_host_name_uses_brackets_off_port_22() -> None:
    assert known_host_name("10.0.0.5", 22) == "10.0.0.5"
    assert known_host_name("10.0.0.5", 2222) == "[10.0.0.5]:2222"


def test_strict_refuses_unknown_host_with_hint(sshd: SSHServer, tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    path.write_text("")
    with pytest.raises(HostError) as caught:
        connect(ssh_host(sshd, path))
    error = caught.value
    assert error.host == "h1"
    assert "unknown host key" in error.message and sshd.fingerprint() in error.message
    assert f"ssh-keyscan -p {sshd.port} -t ssh-ed25519 127.0.0.1 >> {path}" in error.hint
    assert "accept-new" in error.hint
    assert path.read_text() == ""


def test_strict_refuses_when_known_hosts_is_missing(sshd: SSHServer, tmp_path: Path) -> None:
    with pytest.raises(HostError, match="unknown host key"):
        connect(ssh_host(sshd, tmp_path / "absent"))


def test_accept_new_records_the_key_then_reuses_it(sshd: SSHServer, tmp_path: Path) -> None:
    path = tmp_path / "new" / "known_hosts"
    host = ssh_host(sshd, path, host_key_policy="accept-new")
    with connect(host) as conn:
        assert conn.run(["true"]).ok
    assert path.read_text() == sshd.known_hosts_line()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with connect(host) as conn:
        assert conn.run(["true"]).ok
    assert path.read_text() == sshd.known_hosts_line()  # not added twice
    with connect(ssh_host(sshd, path)) as conn:  # and strict now trusts it
        assert conn.run(["true"]).ok


def test_accept_new_keeps_existing_lines(sshd: SSHServer, tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    path.write_text("# no newline at the end")
    with connect(ssh_host(sshd, path, host_key_policy="accept-new")) as conn:
        assert conn.run(["true"]).ok
    assert path.read_text() == "# no newline at the end\n" + sshd.known_hosts_line()


def test_malformed_known_hosts(sshd: SSHServer, tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    path.write_text("example.org ssh-ed25519 AAAA%%%notbase64\n")
    with pytest.raises(HostError, match="malformed line"):
        connect(ssh_host(sshd, path))


def test_accept_new_in_parallel_records_once(sshd: SSHServer, tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    hosts = [ssh_host(sshd, path, name=f"h{i}", host_key_policy="accept-new") for i in range(4)]
    with HostPool(hosts) as pool:
        assert set(pool.map(lambda c: c.run(["true"]).rc).values()) == {0}
    assert path.read_text() == sshd.known_hosts_line()


@pytest.mark.parametrize("policy", ["strict", "accept-new"])
def test_changed_key_is_refused_with_both_fingerprints(own_sshd: SSHServer, tmp_path: Path,
                                                       policy: str) -> None:
    path = tmp_path / "known_hosts"
    original = own_sshd.known_hosts_line()
    path.write_text(original)
    old = own_sshd.fingerprint()
    own_sshd.regenerate_host_key()
    new = own_sshd.fingerprint()
    assert old != new
    with pytest.raises(HostKeyMismatch) as caught:
        connect(ssh_host(own_sshd, path, host_key_policy=policy))
    error = caught.value
    assert (error.expected, error.presented) == (old, new)
    assert old in error.message and new in error.message and "CHANGED" in error.message
    assert f"ssh-keygen -R '[127.0.0.1]:{own_sshd.port}' -f {path}" in error.hint
    assert path.read_text() == original  # never rewritten


def test_wrong_identity_is_an_auth_error(sshd: SSHServer, known: Path, tmp_path: Path) -> None:
    other = keygen(tmp_path / "other_key")
    with pytest.raises(HostError) as caught:
        connect(ssh_host(sshd, known, identity_file=other))
    assert f"authentication as '{sshd.user}' failed with the key {other}" in caught.value.message
    assert "authorized_keys" in caught.value.hint and "ssh-copy-id" in caught.value.hint


@pytest.mark.parametrize("fmt", ["openssh", "pem"])
def test_encrypted_identity_without_agent(sshd: SSHServer, known: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    locked = keygen(tmp_path / "locked_key", passphrase="correct horse",
                    kind="ed25519" if fmt == "openssh" else "ecdsa", pem=fmt == "pem")
    with pytest.raises(HostError) as caught:
        connect(ssh_host(sshd, known, identity_file=locked))
    assert "encrypted and no ssh-agent" in caught.value.message
    assert "ssh-add" in caught.value.hint


def test_unreadable_identity(sshd: SSHServer, known: Path, tmp_path: Path) -> None:
    bad = tmp_path / "not_a_key"
    bad.write_text("hello\n")
    with pytest.raises(HostError, match="not a usable private key"):
        connect(ssh_host(sshd, known, identity_file=bad))


def test_closed_port_is_refused_quickly(sshd: SSHServer, known: Path) -> None:
    host = ssh_host(sshd, known, port=free_port())
    started = time.monotonic()
    with pytest.raises(HostError) as caught:
        connect(host)
    assert time.monotonic() - started < 2
    assert caught.value.message == f"h1: connection refused by 127.0.0.1:{host.ssh.port}"
    assert "sshd is not listening" in caught.value.hint


def test_silent_server_times_out(sshd: SSHServer, known: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    try:
        host = ssh_host(sshd, known, port=listener.getsockname()[1], connect_timeout=1)
        started = time.monotonic()
        with pytest.raises(HostError, match=r"SSH handshake with 127\.0\.0\.1:\d+ failed"):
            connect(host)
        assert time.monotonic() - started < 5
    finally:
        listener.close()


def test_openssh_server_negotiates_aes_gcm(sshd: SSHServer, known: Path) -> None:
    """AES-GCM is offered first (image shipping's throughput); OpenSSH accepts it."""
    with connect(ssh_host(sshd, known)) as conn:
        assert conn.transport.local_cipher.startswith("aes128-gcm")
        assert conn.transport.remote_cipher.startswith("aes128-gcm")


def test_stdin_reaches_the_command(sshd: SSHServer, known: Path) -> None:
    payload = bytes(range(256)) * 8192  # 2 MiB, larger than any channel window
    with connect(ssh_host(sshd, known)) as conn:
        assert conn.run(["cat"], stdin=payload).stdout == payload
        chunks = (bytes([n]) * 100_000 for n in range(30))
        assert conn.run(["wc", "-c"], stdin=chunks).text.strip() == "3000000"
        digest = hashlib.sha256(b"secret\n").hexdigest()
        assert conn.run(["sha256sum"], stdin=b"secret\n").text == f"{digest}  -\n"


def test_timeout(sshd: SSHServer, known: Path) -> None:
    with connect(ssh_host(sshd, known)) as conn:
        with pytest.raises(HostError, match=r"`sleep 5` did not finish within 0.5s"):
            conn.run(["sleep", "5"], timeout=0.5)
        assert conn.run(["true"]).ok  # the connection survives


def test_put_file_is_atomic_and_private(sshd: SSHServer, known: Path, tmp_path: Path) -> None:
    target = tmp_path / "remote" / "deep" / "secret.txt"
    with connect(ssh_host(sshd, known)) as conn:
        conn.put_file(str(target), b"s3cret\n")
        assert target.read_bytes() == b"s3cret\n"
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
        assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700
        conn.put_file(str(target), b"rotated\n", mode=0o644)
        assert target.read_bytes() == b"rotated\n"
        assert stat.S_IMODE(target.stat().st_mode) == 0o644
        assert sorted(p.name for p in target.parent.iterdir()) == ["secret.txt"]
        assert conn.read_file(str(target)) == b"rotated\n"
        assert conn.read_file(str(target.parent / "absent")) is None
        assert conn.home() == str(Path.home())
        with pytest.raises(ValueError):
            conn.put_file("relative/path", b"")


def _echo_server() -> tuple[socket.socket, int]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            while data := conn.recv(4096):
                conn.sendall(data.upper())

    threading.Thread(target=serve, daemon=True).start()
    return listener, listener.getsockname()[1]


def test_tunnel_to_echo_server(sshd: SSHServer, known: Path) -> None:
    listener, port = _echo_server()
    with listener, connect(ssh_host(sshd, known)) as conn:
        channel = conn.open_tunnel("127.0.0.1", port)
        channel.sendall(b"hello")
        received = b""
        while len(received) < 5:
            received += channel.recv(5)
        assert received == b"HELLO"
        channel.close()


def test_tunnel_to_closed_port(sshd: SSHServer, known: Path) -> None:
    with connect(ssh_host(sshd, known)) as conn, \
            pytest.raises(HostError, match=r"cannot open a TCP connection from this host"):
        conn.open_tunnel("127.0.0.1", free_port())


def test_pymysql_through_the_tunnel(sshd: SSHServer, known: Path, mariadb) -> None:
    from survey_ctl.remote.mysql import connect_through

    with connect(ssh_host(sshd, known)) as conn:
        channel = conn.open_tunnel("127.0.0.1", mariadb.port)
        db = connect_through(channel, host="127.0.0.1", port=mariadb.port, user=mariadb.user,
                             password=mariadb.password, connect_timeout=5)
        with db, db.cursor() as cur:
            cur.execute("SELECT 40 + 2")
            assert cur.fetchone() == (42,)


def test_pool_reuses_one_connection_per_host_in_parallel(sshd: SSHServer, known: Path) -> None:
    hosts = [ssh_host(sshd, known, name=f"h{i}") for i in range(3)]
    opened: list[str] = []

    def counting(host):
        opened.append(host.name)
        return connect(host)

    with HostPool(hosts, connector=counting) as pool:
        first = pool.map(lambda c: c.run(["echo", c.name]).text)
        second = pool.map(lambda c: c.run(["echo", c.name]).text)
        assert first == second == {"h0": "h0\n", "h1": "h1\n", "h2": "h2\n"}
        assert sorted(opened) == ["h0", "h1", "h2"]
        assert pool.get("h1") is pool.get("h1")
        pool.get("h1").transport.close()  # a dropped connection is reopened on next use
        assert pool.get("h1").run(["true"]).ok
        assert sorted(opened) == ["h0", "h1", "h1", "h2"]


def test_pool_reports_each_host(sshd: SSHServer, known: Path) -> None:
    good = ssh_host(sshd, known, name="good")
    down = ssh_host(sshd, known, name="down", port=free_port())
    with HostPool([good, down]) as pool:
        outcomes = pool.each(lambda c: c.run(["true"]).rc)
        assert outcomes["good"].value == 0 and outcomes["good"].ok
        assert not outcomes["down"].ok and "connection refused" in outcomes["down"].error.message
        with pytest.raises(HostError, match="down: connection refused"):
            pool.map(lambda c: c.run(["true"]).rc)
    down2 = ssh_host(sshd, known, name="down2", port=free_port())
    with HostPool([down, good, down2]) as pool, pytest.raises(HostError) as caught:
        pool.map(lambda c: c.run(["true"]).rc)
    assert caught.value.host == "down" and caught.value.hint.endswith("also failed: down2")


def test_docker_missing_is_a_clear_error(tmp_path: Path) -> None:
    server = SSHServer(tmp_path / "sshd", env={"PATH": "/nonexistent"}).start()
    try:
        known = tmp_path / "known_hosts"
        known.write_text(server.known_hosts_line())
        with connect(ssh_host(server, known)) as conn, pytest.raises(HostError) as caught:
            conn.docker_version()
        assert caught.value.message == "h1: Docker is not installed (no `docker` command)"
        assert "apt-get install docker.io" in caught.value.hint
    finally:
        server.stop()


def test_docker_problem_classification() -> None:
    denied = Result(1, b"", b"permission denied while trying to connect to the Docker daemon "
                    b"socket at unix:///var/run/docker.sock: Get ...: connect: permission denied")
    error = docker_problem("app1", "deploy", denied)
    assert error.message == "app1: 'deploy' may not use the Docker socket (permission denied)"
    assert "usermod -aG docker deploy" in error.hint
    stopped = Result(1, b"", b"Cannot connect to the Docker daemon at unix:///var/run/docker.sock."
                     b" Is the docker daemon running?")
    assert "not running" in docker_problem("app1", "deploy", stopped).message
    assert docker_problem("app1", "deploy", Result(127, b"", b"bash: docker: command not found"))
    assert docker_problem("app1", "deploy", Result(1, b"", b"Error: No such object: x")) is None


def _docker_answers() -> bool:
    import shutil
    import subprocess

    docker = shutil.which("docker")
    return bool(docker) and subprocess.run([docker, "info"], capture_output=True,
                                           timeout=20).returncode == 0


@pytest.mark.skipif(not _docker_answers(), reason="no Docker Engine on this machine")
def test_docker_cli_over_ssh(sshd: SSHServer, known: Path) -> None:
    from survey_ctl.remote.docker import list_containers

    with connect(ssh_host(sshd, known)) as conn:
        assert conn.docker_version()[0].isdigit()
        assert list_containers(conn, "surveyctl-test-none") == []
        info = conn.docker_json(["info", "--format", "{{json .}}"])
        assert "ServerVersion" in info
        missing = conn.docker(["inspect", "surveyctl-test-none"], check=False)
        assert missing.rc == 1 and missing.stdout.strip() == b"[]"
        with pytest.raises(HostError, match=r"`docker inspect surveyctl-test-none` failed"):
            conn.docker(["inspect", "surveyctl-test-none"])


def test_encrypted_identity_through_the_agent(sshd: SSHServer, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    locked = keygen(tmp_path / "locked_key", passphrase="correct horse")
    askpass = tmp_path / "askpass"
    askpass.write_text("#!/bin/sh\necho 'correct horse'\n")
    askpass.chmod(0o700)
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 5
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        env = {"SSH_AUTH_SOCK": str(sock), "SSH_ASKPASS": str(askpass),
               "SSH_ASKPASS_REQUIRE": "force", "DISPLAY": ":0", "PATH": "/usr/bin:/bin"}
        subprocess.run(["ssh-add", str(locked)], env=env, check=True, capture_output=True,
                       stdin=subprocess.DEVNULL)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        known = tmp_path / "known_hosts"
        known.write_text(sshd.known_hosts_line())
        host = ssh_host(sshd, known, identity_file=locked)
        with pytest.raises(HostError, match="failed with the ssh-agent's keys"):
            connect(host)  # the agent's key is not in authorized_keys yet
        authorized = sshd.root / "authorized_keys"
        original = authorized.read_text()
        authorized.write_text(original + locked.with_suffix(".pub").read_text())
        try:
            with connect(host) as conn:
                assert conn.run(["true"]).ok
        finally:
            authorized.write_text(original)
    finally:
        agent.terminate()
        agent.wait(timeout=5)


def test_openssh_argv_keeps_the_topology_settings_and_strict_keys(sshd: SSHServer,
                                                                  known: Path) -> None:
    from survey_ctl.remote.ssh import openssh_argv

    host = ssh_host(sshd, known, host_key_policy="accept-new")
    assert openssh_argv(host, ["docker", "load", "--quiet"]) == [
        "ssh", "-F", "/dev/null", "-T", "-x", "-a", "-e", "none",
        "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-i", str(sshd.client_key),
        "-o", f"UserKnownHostsFile={known}", "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "StrictHostKeyChecking=yes", "-o", "UpdateHostKeys=no", "-o", "CheckHostIP=no",
        "-o", "ControlPath=none", "-o", "ConnectTimeout=5", "-o", "ServerAliveInterval=15",
        "-o", "LogLevel=ERROR", "-p", str(sshd.port), "-l", sshd.user,
        "--", "127.0.0.1", "docker load --quiet"]


def test_openssh_argv_runs_and_refuses_an_unknown_host_key(sshd: SSHServer, known: Path,
                                                           tmp_path: Path) -> None:
    import subprocess

    from survey_ctl.remote.ssh import openssh_argv

    ran = subprocess.run(openssh_argv(ssh_host(sshd, known), ["echo", "a b"]),
                         capture_output=True, timeout=30)
    assert (ran.returncode, ran.stdout) == (0, b"a b\n")
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    refused = subprocess.run(openssh_argv(ssh_host(sshd, empty), ["true"]),
                             capture_output=True, timeout=30)
    assert refused.returncode == 255 and b"Host key verification failed" in refused.stderr
