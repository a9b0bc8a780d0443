"""Where `up` and `status` spend their time, and image shipping against the raw pipeline.

Profiles (pyinstrument, from the peers' venv) `surveyctl up` from the down state, a
no-op `up` and `status --json`. pyinstrument samples one thread, so the host pool and
the status probes run their work in the calling thread here (the same work, one host
after another; figures are sums, not wall time). Every SSH command is also counted and
timed by its first words (`docker inspect`, `sh -c`, …). Then image shipping:
surveyctl's `ship` (docker save here → its SSH channel → docker load) against
`docker save IMAGE | ssh HOST docker load`, alternating, on the same image.

    benchmarks/run profile --topology benchmarks/.local-target/surveyctl.yaml
    benchmarks/run ship --topology … --image pesquisa-app:latest --runs 3
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import json
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / ".results"
sys.path.insert(0, str(REPO))


class InlineExecutor(concurrent.futures.Executor):
    """An executor that runs each task at once in the calling thread (for profiling)."""

    def __init__(self, *args, **kwargs) -> None:
        pass

    def submit(self, fn, /, *args, **kwargs):
        """Run `fn` now; a finished future."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future


def command_key(command: str) -> str:
    """A short name for an SSH command: its first two words, `sh -c` scripts by their
    first docker verb."""
    words = shlex.split(command)[:6] if command else []
    if words[:2] == ["sh", "-c"] and len(words) > 2:
        inner = words[2].replace(";", " ").split()
        verbs = [w for w in inner if w in ("ps", "inspect", "network", "volume", "image")]
        return f"sh -c (docker {verbs[0] if verbs else '…'})"
    return " ".join(words[:2])


def _instrument() -> dict[str, list[float]]:
    """Count and time every SSH command and connection; make the pools inline."""
    from survey_ctl.checks import probes
    from survey_ctl.cluster import images, up
    from survey_ctl.remote import ssh

    seen: dict[str, list[float]] = collections.defaultdict(list)
    run, connect = ssh.HostConnection.run, ssh.connect

    def timed_run(self, argv, *args, **kwargs):
        started = time.perf_counter()
        try:
            return run(self, argv, *args, **kwargs)
        finally:
            seen[command_key(shlex.join(argv))].append(time.perf_counter() - started)

    def timed_connect(host, *args, **kwargs):
        started = time.perf_counter()
        try:
            return connect(host, *args, **kwargs)
        finally:
            seen["(SSH connect + auth)"].append(time.perf_counter() - started)

    ssh.HostConnection.run = timed_run
    ssh.connect = timed_connect
    ssh.HostPool.__init__.__defaults__ = (ssh.MAX_PARALLEL, timed_connect)
    for module in (ssh, probes, images, up):
        if hasattr(module, "ThreadPoolExecutor"):
            module.ThreadPoolExecutor = InlineExecutor
    concurrent.futures.ThreadPoolExecutor = InlineExecutor  # up's builder, imported late
    return seen


def profile(argv: list[str], name: str) -> tuple[str, dict[str, list[float]]]:
    """Run the CLI with `argv` under pyinstrument; (text report, SSH command timings)."""
    from pyinstrument import Profiler

    from survey_ctl.cli import main as cli

    seen = _instrument()
    seen.clear()
    profiler = Profiler(interval=0.001)
    profiler.start()
    sys.argv = ["surveyctl", *argv]
    try:
        cli()
    except SystemExit:
        pass
    finally:
        profiler.stop()
    text = profiler.output_text(unicode=True, color=False, show_all=False)
    (RESULTS / f"profile-{name}.txt").write_text(text)
    (RESULTS / f"profile-{name}.html").write_text(profiler.output_html())
    return text, dict(seen)


def ship_compare(topology: Path, image: str, runs: int) -> dict[str, list[float]]:
    """surveyctl's `ship` vs `docker save | ssh docker load`, alternating, same image."""
    from survey_ctl.cluster.images import ShipProgress, ship
    from survey_ctl.config import load_topology
    from survey_ctl.remote.ssh import HostPool

    topo = load_topology(topology)
    host = topo.hosts[0]
    ssh_argv = ["ssh", "-i", str(host.ssh.identity_file), "-o",
                f"UserKnownHostsFile={host.ssh.known_hosts}", "-o", "StrictHostKeyChecking=yes",
                "-o", "IdentitiesOnly=yes", "-p", str(host.ssh.port),
                f"{host.ssh.user}@{host.address}", "docker", "load", "--quiet"]
    times: dict[str, list[float]] = {"surveyctl ship": [], "docker save | ssh docker load": []}
    with HostPool([host]) as pool:
        conn = pool.get(host.name)  # connection opened outside the timing, as in `up`
        for _ in range(runs):
            started = time.perf_counter()
            with ShipProgress() as progress:
                ship(conn, [image], progress)
            times["surveyctl ship"].append(time.perf_counter() - started)
            started = time.perf_counter()
            save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
            subprocess.run(ssh_argv, stdin=save.stdout, check=True, capture_output=True)
            save.wait()
            times["docker save | ssh docker load"].append(time.perf_counter() - started)
    return times


def _ssh_table(seen: dict[str, list[float]]) -> str:
    rows = ["| command | calls | total s | median ms |", "| --- | --- | --- | --- |"]
    for key, values in sorted(seen.items(), key=lambda kv: -sum(kv[1])):
        rows.append(f"| `{key}` | {len(values)} | {sum(values):.2f} | "
                    f"{statistics.median(values) * 1000:.0f} |")
    return "\n".join(rows)


def main() -> None:
    """CLI: the profiles, then (or only, with --ship-only) the shipping comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topology", type=Path,
                        default=REPO / "benchmarks" / ".local-target" / "surveyctl.yaml")
    parser.add_argument("--image", default="pesquisa-app:latest")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--ship-only", action="store_true")
    parser.add_argument("--phase", choices=["converge", "noop", "status"])
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    topo = str(args.topology.resolve())
    if args.phase:  # one profile per process: the instrumentation patches modules
        argv = ["status", "--json", "-c", topo] if args.phase == "status" else ["up", "-c", topo]
        _, seen = profile(argv, args.phase)
        (RESULTS / f"ssh-{args.phase}.json").write_text(json.dumps(seen))
        return
    if not args.ship_only:
        surveyctl = [str(REPO / ".venv" / "bin" / "surveyctl")]
        me = [str(REPO / "benchmarks" / ".venv-peers" / "bin" / "python"), __file__,
              "--topology", topo]
        env = {"PYTHONPATH": f"{REPO / '.venv/lib/python3.11/site-packages'}:{REPO}",
               "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
        for phase in ("converge", "noop", "status"):
            if phase == "converge":
                subprocess.run([*surveyctl, "down", "-c", topo], capture_output=True, check=False)
            subprocess.run([*me, "--phase", phase], env=env, check=True, capture_output=True)
            seen = json.loads((RESULTS / f"ssh-{phase}.json").read_text())
            print(f"## {phase}: SSH commands (inline, summed)\n\n{_ssh_table(seen)}\n"
                  f"(profile: {RESULTS / f'profile-{phase}.txt'})\n", flush=True)
    times = ship_compare(args.topology, args.image, args.runs)
    medians = {k: statistics.median(v) for k, v in times.items()}
    ratio = medians["surveyctl ship"] / medians["docker save | ssh docker load"]
    for key, values in times.items():
        print(f"{key}: median {medians[key]:.2f} s, runs {', '.join(f'{v:.2f}' for v in values)}")
    print(f"ship / raw pipeline = {ratio:.2f}")
    (RESULTS / "ship.json").write_text(json.dumps({"times": times, "ratio": ratio}))


if __name__ == "__main__":
    main()
