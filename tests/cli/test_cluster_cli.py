"""`plan`, `up`, `down` and `logs` stop with exit 2 on usage or topology errors, before
any host is touched (proved by a listening socket that no one connects to)."""

from __future__ import annotations

import select
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.test_config_cli import surveyctl
from tests.cli.topologies import SECRETS, Workspace, valid_topology


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A TCP port on loopback that counts as "a host": any connection shows in its queue."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    yield server
    server.close()


def _untouched(server: socket.socket) -> bool:
    readable, _, _ = select.select([server], [], [], 0.2)
    return not readable


def _topology(tmp_path: Path, server: socket.socket) -> Path:
    """The seed topology with every host on loopback (lb on `server`'s port)."""
    port = server.getsockname()[1]
    data = valid_topology()
    data["ssh"]["connect_timeout"] = 2
    for i, address in enumerate(("127.0.0.1", "127.0.0.2", "127.0.0.3")):
        data["hosts"][i]["address"] = address
        data["hosts"][i]["ssh"] = {"port": port}
    return Workspace.create(tmp_path).write(data)


@pytest.mark.parametrize("command", [["plan"], ["up"], ["down"], ["down", "--volumes"],
                                     ["logs"], ["logs", "app", "--follow"]])
def test_missing_secret_stops_before_any_host(tmp_path: Path, listener: socket.socket,
                                               command: list[str]) -> None:
    path = _topology(tmp_path, listener)
    env = {name: value for name, value in SECRETS.items() if name != "SURVEY_DB_PASSWORD"}
    run = surveyctl(*command, "-c", str(path), env=env)
    assert run.code == 2, run.output
    assert "SURVEY_DB_PASSWORD" in run.stderr
    assert "Traceback" not in run.output
    assert _untouched(listener)


def test_valid_topology_does_reach_the_host(tmp_path: Path, listener: socket.socket) -> None:
    """The control case: with every secret set, `plan` does connect (and fails: exit 1)."""
    from tests.sshd import keygen

    path = _topology(tmp_path, listener)
    keygen(tmp_path / "keys" / "id_ed25519")
    run = surveyctl("plan", "-c", str(path), env=SECRETS)
    assert run.code == 1, run.output
    assert not _untouched(listener)


def test_missing_config_file_is_exit_2(tmp_path: Path) -> None:
    run = surveyctl("up", "-c", str(tmp_path / "nope.yaml"))
    assert run.code == 2 and "nope.yaml" in run.stderr


def test_logs_tail_must_not_be_negative(tmp_path: Path, listener: socket.socket) -> None:
    path = _topology(tmp_path, listener)
    run = surveyctl("logs", "--tail", "-3", "-c", str(path), env=SECRETS)
    assert run.code == 2
    assert _untouched(listener)


def test_help_lists_the_cluster_commands() -> None:
    run = surveyctl("--help")
    for command in ("plan", "up", "down", "logs"):
        assert f"  {command} " in run.stdout
    assert "--volumes" in surveyctl("down", "--help").stdout
    assert "--follow" in surveyctl("logs", "--help").stdout
