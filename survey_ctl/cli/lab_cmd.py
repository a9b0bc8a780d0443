"""`surveyctl lab ...`: the local lab of four machines on this Linux box."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from survey_ctl import console
from survey_ctl.cli import app
from survey_ctl.cli.options import JsonOption

lab_app = typer.Typer(
    name="lab",
    help=(
        "The seed's four machines on this Linux box, for trying surveyctl and for the "
        "end-to-end tests: lb, app1, app2 (sshd + Docker Engine each) and cloud (sshd, "
        "OpenVPN server, MariaDB on its VPN address only). Needs root.\n\n"
        "  surveyctl lab up        # then: surveyctl up -c .lab/surveyctl.yaml\n\n"
        "  surveyctl lab stop app2 && surveyctl lab start app2\n\n"
        "  surveyctl lab down      # --images also removes the cached images"
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(lab_app)

DirOption = Annotated[
    Path,
    typer.Option(
        "--dir",
        "-d",
        envvar="SURVEYCTL_LAB_DIR",
        help="Folder for the lab's files (topology, keys, VPN profile, .env).",
    ),
]
HostArgument = Annotated[str, typer.Argument(help="lb, app1, app2 or cloud.", show_default=False)]
DEFAULT_DIR = Path(".lab")


@lab_app.command("up")
def up_command(lab_dir: DirOption = DEFAULT_DIR) -> None:
    """Build the lab, or repair and reuse the one there (a second run takes seconds)."""
    from survey_ctl.lab import lifecycle

    result = lifecycle.up(lab_dir)
    console.success(f"lab ready in {result['seconds']:.0f} s; files in {result['dir']}")
    console.info("next:")
    console.out.print(f"surveyctl up -c {_shown(Path(result['topology']))}")


@lab_app.command("engine")
def engine_command() -> None:
    """Install what the lab needs here and start this machine's Docker Engine."""
    from survey_ctl.lab import lifecycle

    lifecycle.engine()
    console.success("Docker Engine answers on this machine")


@lab_app.command("down")
def down_command(
    lab_dir: DirOption = DEFAULT_DIR,
    images: Annotated[
        bool,
        typer.Option(
            "--images",
            help="Also remove the lab's cached images, .deb cache and app wheelhouse "
            "(without it they are kept, so the next `lab up` is fast).",
        ),
    ] = False,
) -> None:
    """Remove every container, network, volume and file `lab up` made, and nothing else."""
    from survey_ctl.lab import lifecycle

    removed = lifecycle.down(lab_dir, images)
    parts = [f"{len(v)} {k}" for k, v in removed.items()]
    console.success("lab removed: " + ", ".join(parts))
    if not images:
        console.info("cached images kept (remove them with `surveyctl lab down --images`)")


@lab_app.command("status")
def status_command(json_output: JsonOption = False) -> None:
    """Show each lab host: container state, network, services."""
    from rich.table import Table

    from survey_ctl.lab import lifecycle

    state = lifecycle.status()
    if json_output:
        console.print_json(state)
        return
    if state["dir"] is None:
        console.info("no lab here; make one with `surveyctl lab up`")
        return
    table = Table(
        "host", "address", "machine", "network", "services", caption=f"files in {state['dir']}"
    )
    for row in state["hosts"]:
        table.add_row(
            row["host"],
            row["address"],
            row["state"],
            row.get("network", "-"),
            row.get("services", "-"),
        )
    console.out.print(table)


def _toggle(action: str, name: str, done: str, already: str) -> None:
    from survey_ctl.lab import lifecycle

    changed = lifecycle.act(action, name)
    if changed:
        console.success(f"{name}: {done}")
    else:
        console.info(f"{name}: {already}")


@lab_app.command("stop")
def stop_command(host: HostArgument) -> None:
    """Power a host off (docker stop); its disk is kept."""
    _toggle("stop", host, "stopped", "was already stopped")


@lab_app.command("start")
def start_command(host: HostArgument) -> None:
    """Power a host on and wait for sshd and its Docker Engine (or VPN and MariaDB)."""
    _toggle("start", host, "started, services up", "was already running")


@lab_app.command("cut")
def cut_command(host: HostArgument) -> None:
    """Disconnect a host from the lab network (it keeps running)."""
    _toggle("cut", host, "cut off the lab network", "was already cut off")


@lab_app.command("heal")
def heal_command(host: HostArgument) -> None:
    """Reconnect a host to the lab network at its fixed address."""
    _toggle("heal", host, "back on the lab network", "was already connected")


@lab_app.command("pause")
def pause_command(host: HostArgument) -> None:
    """Freeze a host (docker pause): it keeps its address but answers nothing."""
    _toggle("pause", host, "paused", "was not running")


@lab_app.command("unpause")
def unpause_command(host: HostArgument) -> None:
    """Let a paused host run again."""
    _toggle("unpause", host, "running again", "was not paused")


def _shown(path: Path) -> str:
    """The path relative to the current folder when it is below it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# ---------------------------------------------------------------- fan-out variant

fanout_app = typer.Typer(
    name="fanout",
    help=(
        "A fan-out lab beside the main one (own names, label, network, subnet and folder), "
        "with many app hosts, for measuring how `up` and `status` grow (benchmarks/).\n\n"
        "  surveyctl lab fanout up --app-hosts 24      # files in .lab-fanout24/\n\n"
        "  surveyctl lab fanout down --app-hosts 24"
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
)
lab_app.add_typer(fanout_app)
AppHostsOption = Annotated[int, typer.Option("--app-hosts", "-n", help="Number of app hosts.")]
NameOption = Annotated[str, typer.Option("--name", help="Name (default fanout<N>).")]
SubnetOption = Annotated[str, typer.Option("--subnet", help="Default 172.31.(100+N).0/24.")]
FanoutDirOption = Annotated[
    Path | None, typer.Option("--dir", "-d", help="Folder for its files (default .lab-<name>).")
]


@fanout_app.command("up")
def fanout_up_command(app_hosts: AppHostsOption = 24, name: NameOption = "",
                      subnet: SubnetOption = "", lab_dir: FanoutDirOption = None) -> None:
    """Build or repair a fan-out lab (lb, app1…appN, cloud)."""
    from survey_ctl.lab import fanout

    variant = fanout.Fanout(app_hosts, name, subnet)
    result = fanout.up(variant, lab_dir or fanout.default_dir(variant))
    console.success(f"fan-out lab {variant.name} ready ({result['hosts']} hosts) in "
                    f"{result['seconds']:.0f} s")
    console.out.print(f"surveyctl up -c {_shown(Path(result['topology']))}")


@fanout_app.command("down")
def fanout_down_command(app_hosts: AppHostsOption = 24, name: NameOption = "",
                        subnet: SubnetOption = "", lab_dir: FanoutDirOption = None) -> None:
    """Remove a fan-out lab's containers, network, volumes and files (not the main lab)."""
    from survey_ctl.lab import fanout

    variant = fanout.Fanout(app_hosts, name, subnet)
    removed = fanout.down(variant, lab_dir or fanout.default_dir(variant))
    console.success("fan-out lab removed: " + ", ".join(f"{len(v)} {k}"
                                                         for k, v in removed.items()))
