"""`surveyctl status`: the cluster's health at a glance, once or live."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from survey_ctl import console
from survey_ctl.cli import app
from survey_ctl.cli.options import DEFAULT_CONFIG, ConfigOption, JsonOption

if TYPE_CHECKING:
    from survey_ctl.checks import Snapshot
    from survey_ctl.checks.probes import Prober


@app.command("status")
def status(
    config: ConfigOption = DEFAULT_CONFIG,
    watch: Annotated[bool, typer.Option(
        "--watch", "-w", help="Refresh until Ctrl-C (in place on a terminal).")] = False,
    interval: Annotated[float, typer.Option(
        "--interval", "-n", min=0.5, help="Seconds between refreshes with --watch.")] = 2.0,
    as_json: JsonOption = False,
    svg: Annotated[Path | None, typer.Option(
        "--svg", help="Also save the dashboard as an SVG picture (for reports).")] = None,
    timeout: Annotated[float, typer.Option(
        "--timeout", min=0.5, help="Seconds to wait for a host's SSH, or a backend, Redis or "
        "MariaDB probe, before calling it down "
        "(at most the topology's ssh.connect_timeout).")] = 3.0,
) -> None:
    """Show the cluster's health: hosts, containers, balancer, Redis, MariaDB, VPN.

    Every host is reached over one SSH connection, all in parallel. Backends are probed
    through Nginx and directly from the lb host; Redis from its host and from each app
    container; MariaDB from each app container with the app's own credentials (latency
    and applied migration); the VPN's interface, route and tunnel from the vpn host.

    Exit 0 when everything is healthy, 1 when anything is degraded or down (with
    --watch: the last refresh's verdict), 2 for a topology error. --json prints one JSON
    document (with --watch: one document per line). No secret is ever printed.

    Examples:

      surveyctl status -c .lab/surveyctl.yaml

      surveyctl status --watch --interval 5

      surveyctl status --json | jq '.problems'

      surveyctl status --svg dashboard.svg

      surveyctl status --timeout 10    # slow links: wait longer before "unreachable"
    """
    from survey_ctl.checks.probes import Prober
    from survey_ctl.config import load_topology

    topology = load_topology(config)
    with Prober(topology, connect_timeout=timeout) as prober:
        if watch:
            level = _watch(prober, interval, as_json)
        else:
            snapshot = _take(prober)
            _show(snapshot, as_json)
            if svg is not None:
                _save_svg(snapshot, svg)
            level = snapshot.level
    raise typer.Exit(0 if level == "ok" else 1)


def _take(prober: Prober) -> Snapshot:
    """One snapshot, with a spinner on stderr when it is a terminal."""
    if console.is_interactive():
        with console.err.status(f"checking {len(prober.topo.hosts)} hosts…"):
            return prober.snapshot()
    return prober.snapshot()


def _show(snapshot: Snapshot, as_json: bool, compact: bool = False) -> None:
    from survey_ctl.checks import document
    from survey_ctl.checks.render import dashboard

    if as_json and compact:
        console.out.print(json.dumps(document(snapshot), sort_keys=True), markup=False,
                          highlight=False, soft_wrap=True)
    elif as_json:
        console.print_json(document(snapshot))
    else:
        console.out.print(dashboard(snapshot))


def _save_svg(snapshot: Snapshot, path: Path) -> None:
    """Render the dashboard into an SVG file (rich's export; no secrets are in it)."""
    import io

    from rich.console import Console

    from survey_ctl.checks.render import dashboard

    recorder = Console(record=True, width=110, file=io.StringIO(), force_terminal=True)
    recorder.print(dashboard(snapshot))
    recorder.save_svg(str(path), title="surveyctl status")
    console.success(f"dashboard saved to {path}")


def _watch(prober: Prober, interval: float, as_json: bool) -> str:
    """Refresh until Ctrl-C; the last verdict. Live in place only on a terminal."""
    from rich.live import Live

    from survey_ctl.checks.render import dashboard

    level = "ok"
    live_mode = console.out.is_terminal and not as_json
    try:
        if live_mode:
            with Live(console=console.out, auto_refresh=False, screen=False) as live:
                while True:
                    snapshot = prober.snapshot()
                    level = snapshot.level
                    live.update(dashboard(snapshot, verdict_first=True), refresh=True)
                    time.sleep(interval)
        else:
            while True:
                snapshot = prober.snapshot()
                level = snapshot.level
                _show(snapshot, as_json, compact=True)
                if not as_json:
                    console.out.rule(characters="-")
                time.sleep(interval)
    except KeyboardInterrupt:
        return level
