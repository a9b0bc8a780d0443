"""`surveyctl config validate` and `surveyctl init`: check the topology, write a starter."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from survey_ctl import console
from survey_ctl.cli import app
from survey_ctl.cli.options import DEFAULT_CONFIG, ConfigOption, JsonOption
from survey_ctl.errors import UsageError

if TYPE_CHECKING:
    from survey_ctl.config import Host, Topology

config_app = typer.Typer(
    name="config",
    help="Check the topology file.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(config_app)


@config_app.command("validate")
def validate(config: ConfigOption = DEFAULT_CONFIG, as_json: JsonOption = False) -> None:
    """Load and check the topology; print its hosts, roles and services.

    Exit 0 when valid; 2 when not, with every problem listed (no host is contacted).

    Examples:

      surveyctl config validate -c .lab/surveyctl.yaml

      surveyctl config validate --json | jq .topology.hosts
    """
    from survey_ctl.config import TopologyError, load_topology

    try:
        topology = load_topology(config)
    except TopologyError as exc:
        if as_json:
            console.print_json({
                "valid": False,
                "file": str(config),
                "problems": [{"path": p.path, "message": p.message} for p in exc.problems],
            })
        raise
    if as_json:
        console.print_json(
            {"valid": True, "file": str(config), "topology": topology.redacted_dict()}
        )
        return
    _print_summary(topology, config)
    console.success(f"{config} is valid")


@app.command("init")
def init(
    path: Annotated[Path, typer.Argument(
        envvar="SURVEYCTL_CONFIG", help="Where to write the topology.", show_default=True,
    )] = DEFAULT_CONFIG,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write an annotated starter topology (the text of config.example.yaml).

    Examples:

      surveyctl init                   # ./surveyctl.yaml

      surveyctl init prod.yaml --force
    """
    from survey_ctl.config import starter_topology, variables_in

    if path.is_dir():
        raise UsageError(f"{path} is a folder", hint="give the path of the file to write")
    if path.exists() and not force:
        raise UsageError(f"{path} already exists; not overwriting it",
                         hint=f"run `surveyctl init {path} --force` to replace it")
    text = starter_topology()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    console.success(f"wrote {path}")
    console.info(
        f"next: edit the hosts, set {', '.join(variables_in(text))} in the environment or in "
        f"{path.parent / '.env'}, then run `surveyctl config validate -c {path}`"
    )


def _print_summary(topology: Topology, config: Path) -> None:
    """Hosts and services of a valid topology, as tables on stdout."""
    hosts = Table(title=f"cluster {escape(topology.cluster)} ({escape(str(config))})",
                  title_justify="left")
    for column in ("host", "address", "ssh", "roles"):
        hosts.add_column(column)
    for host in topology.hosts:
        hosts.add_row(escape(host.name), escape(host.address),
                      escape(f"{host.ssh.user}@{host.ssh.port} ({host.ssh.host_key_policy})"),
                      ", ".join(host.roles))
    console.out.print(hosts)

    services = Table(title="services", title_justify="left")
    for column in ("service", "image", "hosts", "details"):
        services.add_column(column)
    app_section, db = topology.app, topology.database
    built = " (built here)" if app_section.build else ""
    services.add_row(
        "app", escape(app_section.image + built), _names(topology.app_hosts),
        f"{app_section.replicas} per host, port {app_section.port}, "
        f"health {escape(app_section.healthcheck.path)}",
    )
    services.add_row("lb", escape(topology.lb.image), _names([topology.lb_host]),
                     f"port {topology.lb.port}, {topology.lb.algorithm}")
    services.add_row("redis", escape(topology.redis.image), _names([topology.redis_host]),
                     f"port {topology.redis.port}, password set")
    if topology.vpn is not None and topology.vpn_host is not None:
        services.add_row("vpn", escape(topology.vpn.image), _names([topology.vpn_host]),
                         f"interface {escape(topology.vpn.interface)}")
    services.add_row("database", "(existing MariaDB)", "",
                     escape(f"{db.name} on {db.host}:{db.port} via {db.via}"))
    console.out.print(services)


def _names(hosts: list[Host]) -> str:
    return escape(", ".join(host.name for host in hosts))
