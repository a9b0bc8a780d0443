"""`surveyctl vpn up | check | down`: the OpenVPN client on the vpn host, the path to MariaDB."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from survey_ctl import console
from survey_ctl.cli import app
from survey_ctl.cli.options import DEFAULT_CONFIG, ConfigOption, JsonOption
from survey_ctl.errors import OperationError, UsageError

if TYPE_CHECKING:
    from pathlib import Path

    from survey_ctl.checks import Check
    from survey_ctl.checks.probes import Prober
    from survey_ctl.config import Topology
    from survey_ctl.remote.ssh import HostConnection

vpn_app = typer.Typer(
    name="vpn",
    help=(
        "The OpenVPN client on the vpn host, which carries the app containers to MariaDB.\n\n"
        "  surveyctl vpn check      # each link, client to MariaDB\n\n"
        "  surveyctl vpn down && surveyctl vpn up"
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(vpn_app)

UP_TIMEOUT_S = 45.0
STYLE = {"ok": ("green", "✓"), "degraded": ("yellow", "!"), "down": ("red", "✗")}


def _vpn_topology(config: Path) -> Topology:
    from survey_ctl.config import load_topology

    topology = load_topology(config)
    if topology.vpn_host is None or topology.vpn is None:
        raise UsageError("database.via is direct: this topology has no VPN",
                         hint="set database.via: vpn and a vpn section to use one")
    return topology


def print_links(links: list[Check]) -> Check | None:
    """Print each link with ✓/✗ (stdout) and the hint of the first broken one; return it."""
    broken = next((link for link in links if link.level == "down"), None)
    for link in links:
        colour, mark = STYLE[link.level]
        console.out.print(f"[{colour}]{mark}[/{colour}] {escape(link.name)}: "
                          f"{escape(link.reason)}")
    if broken is not None and broken.hint:
        console.out.print(f"[bold]first broken link:[/bold] {escape(broken.name)}")
        console.out.print(f"[dim]hint:[/dim] {escape(broken.hint)}")
    return broken


@vpn_app.command("check")
def check(config: ConfigOption = DEFAULT_CONFIG, as_json: JsonOption = False) -> None:
    """Check each link from the VPN client to MariaDB, and from every app container.

    Links: the client container runs; the tunnel interface is up (its address); the
    route to database.host goes through it; MariaDB answers through the tunnel from the
    vpn host; each app container logs in to MariaDB through the DB proxy. Exit 0 when
    every link works, 1 otherwise (with a hint for the first broken link).

    Examples:

      surveyctl vpn check -c .lab/surveyctl.yaml

      surveyctl vpn check --json | jq '.links[] | select(.level != "ok")'
    """
    from survey_ctl.checks import vpn_chain
    from survey_ctl.checks.probes import Prober

    topology = _vpn_topology(config)
    with Prober(topology) as prober:
        snapshot = prober.snapshot(balancer=False)
    links = vpn_chain(snapshot)
    if as_json:
        import dataclasses

        console.print_json({"ok": all(link.ok for link in links),
                            "links": [dataclasses.asdict(link) for link in links]})
        broken = any(not link.ok for link in links)
    else:
        broken = print_links(links) is not None
    raise typer.Exit(1 if broken else 0)


@vpn_app.command("up")
def up(
    config: ConfigOption = DEFAULT_CONFIG,
    wait: Annotated[float, typer.Option(
        "--wait", min=0, help="Seconds to wait for the tunnel and the route.")] = UP_TIMEOUT_S,
) -> None:
    """Start the VPN client container on the vpn host and wait for its tunnel.

    A stopped client is started as it is; a missing one is created from the topology
    the way `surveyctl up` does (an outdated one is replaced only by `surveyctl up`).
    Exit 0 once the interface is up and the route to database.host goes through it;
    then run `surveyctl vpn check` to test MariaDB end to end.

    Examples:

      surveyctl vpn up

      surveyctl vpn up --wait 90 && surveyctl vpn check
    """
    with _vpn_client(config) as (prober, conn, name, state):
        if state in ("running", "restarting"):
            console.info(f"{name} is already {state} on {conn.name}")
        elif state == "paused":
            conn.docker(["unpause", name])
        else:
            _start_or_create(config, conn, name, state)
        links = _wait_for_tunnel(prober, wait)
    broken = next((link for link in links if not link.ok), None)
    if broken is not None:
        print_links(links)
        raise OperationError(f"the tunnel is not up after {wait:g} s: {broken.name}: "
                             f"{broken.reason}", hint=broken.hint)
    interface = next(link for link in links if link.name.startswith("interface"))
    console.success(f"VPN up: {interface.name} {interface.reason}")
    console.info("next: surveyctl vpn check (MariaDB end to end)")


def _start_or_create(config: Path, conn: HostConnection, name: str,
                     state: str | None) -> None:
    """Start the stopped client, or create it, the way `surveyctl up` does (its executor)."""
    from survey_ctl.cluster.executor import HostRun
    from survey_ctl.cluster.facts import observe
    from survey_ctl.cluster.up import Cluster
    from survey_ctl.plan import Step

    cluster = Cluster.load(config)
    spec = next(spec for spec in cluster.desired[conn.name] if spec.name == name)
    facts = observe(conn, cluster.topo, [spec], firewall_mode=None)
    if state is None and facts.images.get(spec.image) is None:
        raise OperationError(f"there is no VPN client container {name} on {conn.name}, and "
                             f"its image {spec.image} is not there either",
                             hint="create the cluster first: surveyctl up")
    run = HostRun(conn, cluster.topo, facts, lambda message: console.info(
        f"{conn.name}: {message}"))
    if state is None:
        console.info(f"creating {name} on {conn.name}…")
        run.create(spec)
    else:
        console.info(f"starting {name} on {conn.name} (it was {state})…")
        run.step(Step(conn.name, "start", name, f"it is {state}", spec))


@contextmanager
def _vpn_client(config: Path) -> Iterator[tuple[Prober, HostConnection, str, str | None]]:
    """(prober, connection to the vpn host, client container, its state or None)."""
    from survey_ctl.checks.probes import Prober

    topology = _vpn_topology(config)
    assert topology.vpn_host is not None
    with Prober(topology) as prober:
        name = prober.vpn_container
        assert name is not None
        conn = prober.pool.get(topology.vpn_host.name)
        yield prober, conn, name, _state(conn, name)


def _state(conn: HostConnection, name: str) -> str | None:
    """The container's state, or None when it does not exist."""
    result = conn.docker(["inspect", "--type", "container", "--format", "{{.State.Status}}",
                          name], check=False)
    return result.text.strip() if result.ok else None


def _wait_for_tunnel(prober: Prober, wait: float) -> list[Check]:
    """The vpn host's links (client, interface, route) and the client's health check,
    once all are ok, or at the deadline."""
    from survey_ctl.checks import vpn_links

    host = prober.topo.vpn_host
    assert host is not None
    deadline = time.monotonic() + wait
    while True:
        snapshot = prober.snapshot(balancer=False, services=False, only=[host.name])
        links = [link for link in vpn_links(snapshot) if not link.name.startswith("MariaDB")]
        links += [check for check in snapshot.section("containers")
                  if check.name == prober.vpn_container]
        if all(link.ok for link in links) or time.monotonic() >= deadline:
            return links
        time.sleep(1.0)


@vpn_app.command("down")
def down(config: ConfigOption = DEFAULT_CONFIG) -> None:
    """Stop the VPN client container (the app containers lose MariaDB until `vpn up`).

    Examples:

      surveyctl vpn down && surveyctl vpn check   # shows the broken link, exits 1
    """
    with _vpn_client(config) as (_, conn, name, state):
        if state is None:
            console.info(f"there is no VPN client container {name} on {conn.name}")
            return
        if state not in ("running", "restarting", "paused"):
            console.info(f"{name} is already stopped ({state})")
            return
        conn.docker(["stop", name])
    console.success(f"stopped {name} on {conn.name}")
    console.info("the app containers cannot reach MariaDB until `surveyctl vpn up`")
