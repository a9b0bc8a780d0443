"""`surveyctl logs`: container logs of every host, each line prefixed `host/container | `."""

from __future__ import annotations

import queue
import threading
from typing import TYPE_CHECKING

from rich.markup import escape

from survey_ctl import console
from survey_ctl.remote.docker import list_containers

if TYPE_CHECKING:
    from survey_ctl.cluster.up import Cluster
    from survey_ctl.plan import Observed
    from survey_ctl.remote.ssh import HostConnection


def matches(container: Observed, cluster: str, service: str | None) -> bool:
    """True when `service` is empty, the role, the full name or the name without the prefix."""
    if not service:
        return True
    short = container.name.removeprefix(f"{cluster}-")
    return service in (container.role, container.name, short)


def logs_argv(name: str, tail: int | None, follow: bool) -> list[str]:
    """`docker logs` argv (pure)."""
    argv = ["docker", "logs"]
    if tail is not None:
        argv += ["--tail", str(tail)]
    if follow:
        argv.append("--follow")
    return [*argv, name]


def _prefix(host: str, name: str, line: str) -> str:
    return f"[cyan]{escape(host)}/{escape(name)}[/cyan] | {escape(line)}"


def _pump(conn: HostConnection, name: str, argv: list[str], lines: queue.Queue) -> None:
    """Read one `docker logs --follow` channel (stdout and stderr) line by line."""
    channel = conn.open_command(argv)
    buffers = {False: b"", True: b""}
    try:
        while not (channel.exit_status_ready() and not channel.recv_ready()
                   and not channel.recv_stderr_ready()):
            for is_err, ready, recv in ((False, channel.recv_ready, channel.recv),
                                        (True, channel.recv_stderr_ready, channel.recv_stderr)):
                if ready():
                    buffers[is_err] += recv(65536)
                    *complete, buffers[is_err] = buffers[is_err].split(b"\n")
                    for raw in complete:
                        lines.put((conn.name, name, raw.decode("utf-8", "replace")))
            if not (channel.recv_ready() or channel.recv_stderr_ready()):
                channel.status_event.wait(0.2)
    finally:
        channel.close()


def show_logs(cluster: Cluster, service: str | None, tail: int | None, follow: bool) -> int:
    """Print the matching containers' logs (multiplexed until Ctrl-C with `follow`);
    how many containers matched."""
    topo = cluster.topo
    with cluster.pool() as pool:
        found = pool.map(lambda conn: [c for c in list_containers(conn, topo.cluster)
                                       if matches(c, topo.cluster, service)])
        targets = [(host, c.name) for host, cs in found.items() for c in sorted(cs, key=_name)]
        if not follow:
            for host, name in targets:
                result = pool.get(host).docker(logs_argv(name, tail, False)[1:], timeout=120)
                text = (result.stdout + result.stderr).decode("utf-8", "replace")
                for line in text.splitlines():
                    console.out.print(_prefix(host, name, line))
            return len(targets)
        lines: queue.Queue = queue.Queue()
        for host, name in targets:
            threading.Thread(target=_pump, args=(pool.get(host), name,
                                                 logs_argv(name, tail, True), lines),
                             daemon=True).start()
        try:
            while True:
                host, name, line = lines.get()
                console.out.print(_prefix(host, name, line))
        except KeyboardInterrupt:
            console.info("stopped following")
        return len(targets)


def _name(container: Observed) -> str:
    return container.name
