"""One `up`/`down` at a time per host and cluster: a `flock` held over an SSH channel.

The lock is taken by `flock` on the host (util-linux) on `<state>/.lock` and held by a
`cat` waiting on the channel's stdin: closing the channel, or losing the connection,
ends `cat` and releases it. A host without `flock` is worked without the lock.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from survey_ctl.errors import HostError

if TYPE_CHECKING:
    from survey_ctl.remote.ssh import HostConnection

WAIT_SECONDS = 900
_SCRIPT = ('mkdir -p -m 0700 "$1" && command -v flock >/dev/null || { echo noflock; exit 0; }; '
           'exec flock -w "$2" "$1/.lock" sh -c "echo locked; exec cat >/dev/null"')


def lock_argv(state: str, wait: int = WAIT_SECONDS) -> list[str]:
    """The command that takes the lock, prints `locked` and holds it until stdin ends (pure)."""
    return ["sh", "-c", _SCRIPT, "sh", state, str(wait)]


@contextlib.contextmanager
def host_lock(conn: HostConnection, state: str, say: Callable[[str], None],
              wait: int = WAIT_SECONDS) -> Iterator[None]:
    """Hold the cluster's lock on the host for the block (waiting for another run)."""
    channel = conn.open_command(lock_argv(state, wait))
    try:
        seen, warned, started = b"", False, time.monotonic()
        while b"\n" not in seen:
            if channel.recv_ready():
                seen += channel.recv(64)
            elif channel.exit_status_ready() and not channel.recv_ready():
                break
            else:
                if not warned and time.monotonic() - started > 2:
                    say("waiting for another surveyctl run on this host to finish")
                    warned = True
                channel.status_event.wait(0.05)
        answer = seen.strip().decode("utf-8", "replace")
        if answer == "noflock":
            say("no `flock` on the host: working without the lock")
        elif answer != "locked":
            raise HostError(conn.name, f"could not take the lock {state}/.lock within "
                            f"{wait}s (exit {channel.recv_exit_status()})",
                            hint="another surveyctl up/down is still working on this host; "
                            "wait for it, or find it with `fuser -v` on that file")
        yield
    finally:
        with contextlib.suppress(Exception):
            channel.shutdown_write()
        channel.close()
