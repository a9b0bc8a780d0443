"""`surveyctl plan`, `up`, `down` and `logs`: the cluster on its hosts."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from survey_ctl import console
from survey_ctl.cli import app
from survey_ctl.cli.options import DEFAULT_CONFIG, ConfigOption

VerboseOption = Annotated[bool, typer.Option("--verbose", "-v",
                                             help="Show the image build's output.")]


@app.command("plan")
def plan_cmd(config: ConfigOption = DEFAULT_CONFIG) -> None:
    """Show what `up` would change on each host, without changing anything.

    Exit 0 when every host could be read (whatever the plan), 1 if one could not,
    2 for a topology error (no host contacted).

    Examples:

      surveyctl plan -c .lab/surveyctl.yaml
    """
    from survey_ctl.cluster.up import Cluster, finish, plan_cluster, print_plan

    cluster = Cluster.load(config)
    reports = plan_cluster(cluster)
    total = print_plan(reports)
    unread = sum(report.plan is None for report in reports.values())
    if unread:
        console.info(f"{total} change(s) on the {len(reports) - unread} host(s) read")
    else:
        console.info(f"{total} change(s) to make" if total else "0 changes: nothing to do")
    finish(reports, "plan")


@app.command("up")
def up_cmd(config: ConfigOption = DEFAULT_CONFIG, verbose: VerboseOption = False) -> None:
    """Converge the whole cluster: images, network, firewall, Redis, app containers,
    Nginx, the VPN client; then check health, Nginx and every app's path to MariaDB.

    Idempotent: a second run changes nothing ("0 changes"). Hosts are worked in
    parallel; one failing host does not stop the others (exit 1 names it).

    Examples:

      surveyctl up -c .lab/surveyctl.yaml

      surveyctl up --verbose          # show the image build's output
    """
    from survey_ctl.cluster.up import Cluster, finish, print_report, up_cluster

    started = time.monotonic()
    cluster = Cluster.load(config)
    reports, _ = up_cluster(cluster, verbose)
    print_report(reports, "converged")
    total = sum(r.plan.changes for r in reports.values() if r.plan)
    console.info(f"{total} change(s) in {time.monotonic() - started:.1f}s" if total
                 else f"0 changes: nothing to do ({time.monotonic() - started:.1f}s)")
    finish(reports, "up")
    lb = cluster.topo.lb_host.address
    port = cluster.topo.lb.port
    console.success(f"cluster {cluster.topo.cluster} is up: http://{lb}"
                    f"{'' if port == 80 else f':{port}'}/")


@app.command("down")
def down_cmd(
    config: ConfigOption = DEFAULT_CONFIG,
    volumes: Annotated[bool, typer.Option("--volumes", help="Also remove the data volumes "
                                          "(Redis).")] = False,
) -> None:
    """Remove what `up` created on every host: containers, networks, firewall chain and
    uploaded files. Volumes are kept unless --volumes.

    Examples:

      surveyctl down -c .lab/surveyctl.yaml

      surveyctl down --volumes
    """
    from survey_ctl.cluster.down import down_cluster
    from survey_ctl.cluster.up import Cluster, finish, print_report

    cluster = Cluster.load(config)
    reports = down_cluster(cluster, volumes)
    print_report(reports, "removed")
    finish(reports, "down")


@app.command("logs")
def logs_cmd(
    service: Annotated[str | None, typer.Argument(
        help="app, nginx, redis, vpn, or a container name; all when left out.")] = None,
    config: ConfigOption = DEFAULT_CONFIG,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines "
                                         "until Ctrl-C.")] = False,
    tail: Annotated[int | None, typer.Option("--tail", "-n", min=0, help="Only the last N "
                                             "lines of each container.")] = None,
) -> None:
    """Container logs of all hosts, each line prefixed `host/container | `.

    Examples:

      surveyctl logs app --tail 20

      surveyctl logs --follow
    """
    from survey_ctl.cluster.logs import show_logs
    from survey_ctl.cluster.up import Cluster
    from survey_ctl.errors import UsageError

    cluster = Cluster.load(config)
    if not show_logs(cluster, service, tail, follow):
        raise UsageError(f"no container of cluster {cluster.topo.cluster} matches "
                         f"{service or 'anything'}",
                         hint="services: app, nginx, redis, vpn; run `surveyctl up` first")
