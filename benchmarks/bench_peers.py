"""surveyctl against Ansible (community.docker) and pyinfra on the same topology.

Run through `benchmarks/run` (it makes the peers' venv). In one run, alternating the
tools (the order rotates every round), each round and tool: `surveyctl down`
(untimed: images stay, nothing runs), then timed (a) converge, (b) the same converge
again (a no-op), (c) a health check of every container and backend (`surveyctl
status --json`, `ansible/status.yml`, `pyinfra/status.py`). Medians, spread and the
ratios surveyctl/peer go to stdout and into docs/benchmarks.md, with a PNG.

`--fanout TOPOLOGY...` instead measures converge and status on each topology (e.g.
the main lab and the fan-out labs of 12 and 24 app hosts) to see how they grow.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "benchmarks"
PEERS = BENCH / "peers"
VENV = BENCH / ".venv-peers"
RESULTS = BENCH / ".results"
SURVEYCTL = REPO / ".venv" / "bin" / "surveyctl"
LAB_NET = ipaddress.ip_network("172.31.56.0/24")
LAB_PERMIT = REPO / ".lab" / "BENCH-MAY-USE"
TOOLS = ("surveyctl", "pyinfra", "ansible")
PHASES = ("converge", "noop", "status")


# ---------------------------------------------------------------- pure helpers


def summary(values: list[float]) -> dict[str, float]:
    """Median, min, max and interquartile range of some timings (seconds)."""
    ordered = sorted(values)
    if len(ordered) >= 2:
        q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    else:
        q1 = q3 = ordered[0]
    return {"median": statistics.median(ordered), "min": ordered[0], "max": ordered[-1],
            "iqr": q3 - q1, "n": len(ordered)}


def rotation(tools: tuple[str, ...] | list[str], round_: int) -> list[str]:
    """The tools' order in round `round_`: rotated so each goes first in turn."""
    k = round_ % len(tools)
    return [*tools[k:], *tools[:k]]


def ratios(medians: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """surveyctl's median / each peer's median, per phase (below 1: surveyctl faster)."""
    out: dict[str, dict[str, float]] = {}
    for phase, by_tool in medians.items():
        mine = by_tool.get("surveyctl")
        out[phase] = {tool: mine / value for tool, value in by_tool.items()
                      if tool != "surveyctl" and mine is not None and value > 0}
    return out


def touches_lab(addresses: list[str]) -> bool:
    """True when any address is in the shared lab's subnet (172.31.56.0/24)."""
    for address in addresses:
        try:
            if ipaddress.ip_address(address) in LAB_NET:
                return True
        except ValueError:
            continue
    return False


def replace_section(text: str, name: str, body: str) -> str:
    """`text` with the section between `<!-- name:begin -->` and `<!-- name:end -->`
    replaced by `body` (appended when absent)."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    block = f"{begin}\n{body.rstrip()}\n{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        return head + block + rest.split(end, 1)[1]
    return (text.rstrip() + "\n\n" if text.strip() else "") + block + "\n"


def table(results: dict[str, dict[str, list[float]]], tools: list[str]) -> str:
    """Markdown: one row per phase, median [min–max] per tool, then the ratios."""
    medians = {phase: {tool: summary(v)["median"] for tool, v in by_tool.items() if v}
               for phase, by_tool in results.items()}
    peers = [t for t in tools if t != "surveyctl"]
    head = ("| phase | " + " | ".join(f"{t} median [min–max] (IQR)" for t in tools)
            + "".join(f" | surveyctl/{p}" for p in peers) + " |")
    lines = [head, "|" + " --- |" * (1 + len(tools) + len(peers))]
    ratio = ratios(medians)
    for phase, by_tool in results.items():
        cells = []
        for tool in tools:
            if by_tool.get(tool):
                s = summary(by_tool[tool])
                cells.append(f"{s['median']:.2f} s [{s['min']:.2f}–{s['max']:.2f}] "
                             f"({s['iqr']:.2f})")
            else:
                cells.append("—")
        rs = [f"{ratio[phase][p]:.2f} ({1 / ratio[phase][p]:.1f}× faster)"
              if p in ratio.get(phase, {}) else "—" for p in peers]
        lines.append(f"| {phase} | " + " | ".join(cells + rs) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------- running the tools


def ensure_venv() -> None:
    """The peers' own venv (Ansible with community.docker, pyinfra) from PyPI."""
    if (VENV / "bin" / "ansible-playbook").exists() and (VENV / "bin" / "pyinfra").exists():
        return
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(VENV / "bin" / "pip"), "install", "--quiet", "ansible==12.3.0",
                    "pyinfra==3.10.0", "pyinstrument"], check=True)


class Runner:
    """Runs one tool's converge/status against one topology and times it."""

    def __init__(self, topology: Path, out: Path, logs: Path) -> None:
        self.topology, self.out, self.logs = topology, out, logs
        self.env = {**os.environ, "ANSIBLE_CONFIG": str(out / "ansible.cfg"),
                    "PEERS_VARS": str(out / "vars.json"), "NO_COLOR": "1"}

    def argv(self, tool: str, phase: str) -> list[str]:
        """The command of `tool` for `phase`."""
        if tool == "surveyctl":
            if phase == "status":
                return [str(SURVEYCTL), "status", "--json", "-c", str(self.topology)]
            return [str(SURVEYCTL), "up", "-c", str(self.topology)]
        if tool == "ansible":
            book = "status.yml" if phase == "status" else "converge.yml"
            return [str(VENV / "bin" / "ansible-playbook"), "-i", str(self.out / "inventory.ini"),
                    "-e", f"@{self.out / 'vars.json'}", str(PEERS / "ansible" / book)]
        deploy = "status.py" if phase == "status" else "converge.py"
        return [str(VENV / "bin" / "pyinfra"), "-y", str(self.out / "pyinfra_inventory.py"),
                str(PEERS / "pyinfra" / deploy)]

    def timed(self, tool: str, phase: str, tag: str) -> tuple[float, bool]:
        """Run and time one command; (seconds, ok). Output goes to a log file."""
        log = self.logs / f"{tag}-{tool}-{phase}.log"
        with log.open("wb") as handle:
            started = time.perf_counter()
            done = subprocess.run(self.argv(tool, phase), stdout=handle, stderr=subprocess.STDOUT,
                                  env=self.env, cwd=self.out, check=False)
            seconds = time.perf_counter() - started
        return seconds, done.returncode == 0

    def down(self) -> None:
        """`surveyctl down` (images stay on the hosts): the common starting point."""
        subprocess.run([str(SURVEYCTL), "down", "-c", str(self.topology)], check=False,
                       capture_output=True, env=self.env)


def prepare(topology: Path, python: str) -> Runner:
    """A first `surveyctl up` (builds the app image, ships images) and `db-migrate`, the
    peers' files for `topology` (with the images' IDs and users as built); the runner."""
    name = topology.resolve().parent.name.strip(".") or "target"
    out = BENCH / ".peers-out" / name
    logs = RESULTS / f"logs-{name}"
    logs.mkdir(parents=True, exist_ok=True)
    runner = Runner(topology, out, logs)
    out.mkdir(parents=True, exist_ok=True)
    seconds, ok = runner.timed("surveyctl", "converge", "prepare")
    if not ok:
        raise SystemExit(f"the first `surveyctl up` failed: see {logs}/prepare-*.log")
    print(f"prepared {topology}: first up (build, images shipped) {seconds:.1f} s", flush=True)
    # `status` (every tool's) counts pending migrations as degraded: apply them once.
    subprocess.run([str(SURVEYCTL), "db-migrate", "-c", str(topology)], check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run([str(REPO / ".venv" / "bin" / "python"), str(PEERS / "gen_peers.py"),
                    "--topology", str(topology), "--out", str(out), "--python", python,
                    "--save-images"], check=True, stdout=subprocess.DEVNULL)
    return runner


def _addresses(topology: Path) -> list[str]:
    sys.path.insert(0, str(REPO))
    from survey_ctl.config import load_topology

    return [h.address for h in load_topology(topology).hosts]


def guard(topologies: list[Path]) -> None:
    """Refuse the shared lab unless .lab/BENCH-MAY-USE exists."""
    for topology in topologies:
        if touches_lab(_addresses(topology)) and not LAB_PERMIT.exists():
            raise SystemExit(f"{topology} points at the shared lab (172.31.56.0/24) and "
                             f"{LAB_PERMIT} does not exist: not running")


def compare(runner: Runner, runs: int, tools: list[str]) -> dict[str, dict[str, list[float]]]:
    """The alternating rounds; timings per phase and tool (failed runs are dropped)."""
    results: dict[str, dict[str, list[float]]] = {p: {t: [] for t in tools} for p in PHASES}
    for round_ in range(runs):
        for tool in rotation(tools, round_):
            runner.down()
            for phase in PHASES:
                seconds, ok = runner.timed(tool, "converge" if phase == "noop" else phase,
                                           f"r{round_}-{phase}")
                mark = "ok" if ok else "FAILED"
                print(f"round {round_ + 1}/{runs} {tool:9} {phase:8} {seconds:6.2f} s {mark}",
                      flush=True)
                if ok:
                    results[phase][tool].append(seconds)
    return results


def plot(results: dict[str, dict[str, list[float]]], tools: list[str], path: Path,
         title: str) -> None:
    """Grouped bars (median, whiskers min–max) per phase and tool."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    width = 0.8 / len(tools)
    for i, tool in enumerate(tools):
        xs, ys, lo, hi = [], [], [], []
        for j, phase in enumerate(PHASES):
            values = results[phase].get(tool) or []
            if not values:
                continue
            s = summary(values)
            xs.append(j + i * width)
            ys.append(s["median"])
            lo.append(s["median"] - s["min"])
            hi.append(s["max"] - s["median"])
        ax.bar(xs, ys, width, yerr=[lo, hi], capsize=3, label=tool)
    ax.set_xticks([j + width * (len(tools) - 1) / 2 for j in range(len(PHASES))],
                  ["converge", "no-op re-run", "status"])
    ax.set_ylabel("seconds (median, min–max)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fanout(topologies: list[Path], runs: int, tools: list[str], python: str) -> dict:
    """Converge and status on each topology: {hosts: {phase: {tool: [s]}}}."""
    grown: dict[int, dict[str, dict[str, list[float]]]] = {}
    for topology in topologies:
        runner = prepare(topology, python)
        count = len(_addresses(topology))
        grown[count] = {"converge": {t: [] for t in tools}, "status": {t: [] for t in tools}}
        for round_ in range(runs):
            for tool in rotation(tools, round_):
                runner.down()
                for phase in ("converge", "status"):
                    seconds, ok = runner.timed(tool, phase, f"fan{count}-r{round_}")
                    print(f"{count} hosts {tool:9} {phase:8} {seconds:6.2f} s "
                          f"{'ok' if ok else 'FAILED'}", flush=True)
                    if ok:
                        grown[count][phase][tool].append(seconds)
        runner.down()
    return grown


def plot_fanout(grown: dict, tools: list[str], path: Path) -> None:
    """Median seconds against the number of hosts, per tool and phase."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    for ax, phase in zip(axes, ("converge", "status"), strict=True):
        for tool in tools:
            points = [(n, summary(v[phase][tool])["median"]) for n, v in sorted(grown.items())
                      if v[phase][tool]]
            if points:
                ax.plot(*zip(*points, strict=True), marker="o", label=tool)
        ax.set_xlabel("hosts")
        ax.set_ylabel("seconds (median)")
        ax.set_title(phase)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _context() -> str:
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
            f"{os.cpu_count()} cores, load average {load}")


def main() -> None:
    """CLI: the side-by-side comparison, or `--fanout`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topology", type=Path, default=REPO / ".lab" / "surveyctl.yaml")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tools", default=",".join(TOOLS))
    parser.add_argument("--label", default="lab", help="where it ran (goes into the report)")
    parser.add_argument("--python", default="auto_silent",
                        help="ansible_python_interpreter on the hosts")
    parser.add_argument("--fanout", type=Path, nargs="+", metavar="TOPOLOGY")
    parser.add_argument("--install-host-python", action="store_true",
                        help="first give hosts without it python3 + requests (Ansible's "
                        "docker modules need them; the lab's VMs have no Python)")
    parser.add_argument("--report", type=Path, default=REPO / "docs" / "benchmarks.md")
    args = parser.parse_args()
    args.topology = args.topology.resolve()
    args.fanout = [t.resolve() for t in args.fanout] if args.fanout else None
    tools = [t for t in args.tools.split(",") if t]
    ensure_venv()
    guard(args.fanout or [args.topology])
    RESULTS.mkdir(exist_ok=True)
    if args.install_host_python and "ansible" in tools:
        for topology in args.fanout or [args.topology]:
            subprocess.run([str(REPO / ".venv" / "bin" / "python"),
                            str(PEERS / "host_python.py"), "--topology", str(topology)],
                           check=True)
    report = args.report.read_text() if args.report.exists() else "# Benchmarks\n"
    if args.fanout:
        grown = fanout(args.fanout, args.runs, tools, args.python)
        (RESULTS / f"fanout-{args.label}.json").write_text(json.dumps(grown, indent=1))
        png = args.report.with_name(f"benchmarks-fanout-{args.label}.png")
        plot_fanout(grown, tools, png)
        rows = ["| hosts | phase | " + " | ".join(tools) + " |", "|" + " --- |" * (2 + len(tools))]
        for n, phases in sorted(grown.items()):
            for phase, by_tool in phases.items():
                rows.append(f"| {n} | {phase} | " + " | ".join(
                    f"{summary(v)['median']:.2f} s" if v else "—" for v in by_tool.values()) + " |")
        body = (f"### Fan-out ({args.label}; {_context()}; {args.runs} runs)\n\n"
                + "\n".join(rows) + f"\n\n![fan-out]({png.name})\n")
        args.report.write_text(replace_section(report, f"fanout-{args.label}", body))
        print("\n".join(rows))
        return
    runner = prepare(args.topology, args.python)
    results = compare(runner, args.runs, tools)
    runner.down()
    (RESULTS / f"peers-{args.label}.json").write_text(json.dumps(results, indent=1))
    text = table(results, tools)
    png = args.report.with_name(f"benchmarks-peers-{args.label}.png")
    plot(results, tools, png, f"surveyctl vs peers ({args.label})")
    body = (f"### Side by side ({args.label}; {_context()}; {args.runs} rounds, alternating)\n\n"
            f"Topology: `{args.topology}`.\n\n{text}\n\n![peers]({png.name})\n")
    args.report.write_text(replace_section(report, f"peers-{args.label}", body))
    print(text)


if __name__ == "__main__":
    main()
