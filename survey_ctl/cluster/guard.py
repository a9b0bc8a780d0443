"""The cluster's deploy lock (one `up`/`deploy`/`down` at a time) and each host's audit log.

The lock is a directory `<state>/deploy.lock` on the lb host, made with `mkdir` (atomic:
exactly one of two racing runs succeeds) holding `owner.json` (operator, machine, pid,
command, since). A second run is refused, not queued, and told who holds it. A lock
left by a run on this machine whose pid is gone (killed) is taken over; any other stale
lock is released by `surveyctl lock release`.

The audit log is `<state>/audit.log` on each host, append-only JSON lines (time,
operator, command, step, result): never a secret, only what the commands print.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from survey_ctl.errors import HostError, OperationError
from survey_ctl.remote.docker import state_dir

if TYPE_CHECKING:
    from survey_ctl.config import Topology
    from survey_ctl.remote.ssh import HostConnection

LOCK = "deploy.lock"
AUDIT = "audit.log"
_TAKE = ('mkdir -p -m 0700 "$1" && if mkdir -m 0700 "$1/$2" 2>/dev/null; then '
         'cat > "$1/$2/owner.json"; echo taken; else echo held; '
         'cat "$1/$2/owner.json" 2>/dev/null; fi')
_RELEASE = ('test -d "$1/$2" || { echo none; exit 0; }; '
            'cat "$1/$2/owner.json" 2>/dev/null; echo; rm -rf -- "$1/$2" && echo released')
_APPEND = 'mkdir -p -m 0700 "$1" && cat >> "$1/$2" && chmod 0600 "$1/$2"'


def operator() -> str:
    """`user@machine` of whoever runs this command."""
    return f"{getpass.getuser()}@{socket.gethostname()}"


@dataclass(frozen=True)
class Owner:
    """Who holds the lock: operator, machine, pid, command and since when (epoch)."""

    operator: str
    machine: str
    pid: int
    command: str
    since: float

    @classmethod
    def me(cls, command: str) -> Owner:
        """This process, running `command`."""
        return cls(operator(), socket.gethostname(), os.getpid(), command, time.time())

    @classmethod
    def parse(cls, text: str) -> Owner | None:
        """The owner from owner.json's text (None if unreadable)."""
        try:
            data = json.loads(text)
            return cls(str(data["operator"]), str(data["machine"]), int(data["pid"]),
                       str(data["command"]), float(data["since"]))
        except (ValueError, KeyError, TypeError):
            return None

    def describe(self) -> str:
        """`deploy by ana@laptop (pid 42) since 2026-12-03 20:01:02 UTC`."""
        since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.since))
        return f"`{self.command}` by {self.operator} (pid {self.pid}) since {since}"

    def gone(self) -> bool:
        """True when the holder ran on this machine and its process no longer exists."""
        if self.machine != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False


def _state(conn: HostConnection, topo: Topology) -> str:
    return state_dir(conn.home(), topo.cluster)


def take(conn: HostConnection, topo: Topology, command: str) -> Owner:
    """Take the cluster lock on the lb host or raise (naming the holder); a dead local
    holder's lock is taken over."""
    me = Owner.me(command)
    state = _state(conn, topo)
    for _ in range(2):
        result = conn.run(["sh", "-c", _TAKE, "sh", state, LOCK],
                          stdin=json.dumps(me.__dict__).encode())
        if not result.ok:
            raise HostError(conn.name, f"cannot take the cluster lock: {result.error_text}")
        answer, _, rest = result.text.partition("\n")
        if answer.strip() == "taken":
            return me
        holder = Owner.parse(rest)
        if holder is not None and holder.gone():
            conn.run(["rm", "-rf", "--", f"{state}/{LOCK}"])
            continue
        who = holder.describe() if holder else "a run that is still writing its name"
        raise OperationError(f"the cluster {topo.cluster} is locked by {who}",
                             hint="wait for it to finish; if it is dead, release the lock "
                             "with `surveyctl lock release`")
    raise OperationError(f"could not take the lock of cluster {topo.cluster}")


def release(conn: HostConnection, topo: Topology, owner: Owner | None = None) -> Owner | None:
    """Remove the lock (only if `owner` still holds it, when given); who held it."""
    state = _state(conn, topo)
    if owner is not None:
        held = conn.read_file(f"{state}/{LOCK}/owner.json")
        if held is None or Owner.parse(held.decode()) != owner:
            return None
    result = conn.run(["sh", "-c", _RELEASE, "sh", state, LOCK])
    lines = result.text.splitlines()
    if not lines or lines[0] == "none":
        return None
    return Owner.parse(lines[0])


@contextlib.contextmanager
def cluster_lock(conn: HostConnection, topo: Topology, command: str) -> Iterator[Owner]:
    """Hold the cluster lock (on the lb host's connection) for the block."""
    owner = take(conn, topo, command)
    try:
        yield owner
    finally:
        with contextlib.suppress(Exception):
            release(conn, topo, owner)


def audit_line(command: str, step: str, result: str, at: float | None = None) -> str:
    """One audit record as a JSON line (pure)."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if at is None else at))
    return json.dumps({"time": stamp, "operator": operator(), "command": command,
                       "step": step, "result": result}, ensure_ascii=False) + "\n"


def record(conn: HostConnection, topo: Topology, command: str, step: str, result: str) -> None:
    """Append one record to the host's audit log (best effort: never fails the run)."""
    with contextlib.suppress(Exception):
        conn.run(["sh", "-c", _APPEND, "sh", _state(conn, topo), AUDIT],
                 stdin=audit_line(command, step, result).encode())


def read_audit(conn: HostConnection, topo: Topology) -> list[dict]:
    """The host's audit records, oldest first (lines that are not JSON skipped)."""
    raw = conn.read_file(f"{_state(conn, topo)}/{AUDIT}") or b""
    records = []
    for line in raw.decode("utf-8", "replace").splitlines():
        with contextlib.suppress(ValueError):
            records.append({**json.loads(line), "host": conn.name})
    return records
