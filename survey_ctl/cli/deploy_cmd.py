"""`surveyctl deploy`, `rollback`, `lock release` and `audit`: releases and their record."""

from __future__ import annotations

from typing import Annotated

import typer

from survey_ctl import console
from survey_ctl.cli import app
from survey_ctl.cli.options import DEFAULT_CONFIG, ConfigOption

lock_app = typer.Typer(name="lock", help="The cluster's deploy lock (held on the lb host).",
                       no_args_is_help=True)
app.add_typer(lock_app, name="lock")


def _command(*words: str | None) -> str:
    return " ".join(word for word in ("surveyctl", *words) if word)


@app.command("deploy")
def deploy_cmd(
    config: ConfigOption = DEFAULT_CONFIG,
    image: Annotated[str | None, typer.Option("--image", help="Deploy this image (NAME:TAG, "
                                              "here or on the app hosts) instead of "
                                              "building one.")] = None,
    version: Annotated[str | None, typer.Option("--version", help="Tag for the image built "
                                                "now (default r<UTC time>).")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v",
                                          help="Show the image build's output.")] = False,
) -> None:
    """Rolling, zero-downtime update of the app containers, one backend at a time.

    Each replica: a stand-in on the new image starts beside it, health-gated, goes into
    Nginx (graceful reload), the old one is taken out, drained and stopped; then the
    replica is recreated on the new image the same way. A new container that never gets
    healthy is removed, the old ones keep serving, exit 1 with its last log lines.
    `up` keeps the deployed release afterwards.

    Examples:

      surveyctl deploy -c .lab/surveyctl.yaml

      surveyctl deploy --version 1.4.2

      surveyctl deploy --image pesquisa-app:r20261203-200102
    """
    from survey_ctl.cluster.deploy import deploy_cluster
    from survey_ctl.cluster.up import Cluster
    from survey_ctl.errors import UsageError

    if image and version:
        raise UsageError("--image and --version exclude each other",
                         hint="--version tags an image built now; --image names one that exists")
    cluster = Cluster.load(config)
    tag = deploy_cluster(cluster, _command("deploy", image and f"--image {image}",
                                           version and f"--version {version}"),
                         image=image, version=version, verbose=verbose)
    console.success(f"release {tag} is live")


@app.command("rollback")
def rollback_cmd(config: ConfigOption = DEFAULT_CONFIG) -> None:
    """Deploy the previous release again (rolling, like `deploy`).

    Examples:

      surveyctl rollback -c .lab/surveyctl.yaml
    """
    from survey_ctl.cluster.deploy import deploy_cluster
    from survey_ctl.cluster.up import Cluster

    cluster = Cluster.load(config)
    tag = deploy_cluster(cluster, _command("rollback"), rollback=True)
    console.success(f"rolled back to {tag}")


@lock_app.command("release")
def lock_release_cmd(config: ConfigOption = DEFAULT_CONFIG) -> None:
    """Release the cluster's deploy lock left by a run that died (says whose it was).

    Examples:

      surveyctl lock release -c .lab/surveyctl.yaml
    """
    from survey_ctl.cluster import guard
    from survey_ctl.cluster.up import Cluster

    cluster = Cluster.load(config)
    topo = cluster.topo
    with cluster.pool() as pool:
        conn = pool.get(topo.lb_host.name)
        held = guard.release(conn, topo)
        guard.record(conn, topo, _command("lock release"), "release the deploy lock",
                     f"ok: was held by {held.describe()}" if held else "ok: was not held")
    console.info(f"released the lock held by {held.describe()}" if held
                 else "the cluster was not locked")


@app.command("audit")
def audit_cmd(
    config: ConfigOption = DEFAULT_CONFIG,
    host: Annotated[str | None, typer.Option("--host", help="Only this host.")] = None,
    tail: Annotated[int, typer.Option("--tail", "-n", min=1, help="The last N records.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines for machines.")] = False,
) -> None:
    """The audit log of every change on each host (who, when, what, how it ended).

    Examples:

      surveyctl audit -c .lab/surveyctl.yaml --tail 50

      surveyctl audit --host app1 --json
    """
    import json

    from rich.markup import escape

    from survey_ctl.cluster import guard
    from survey_ctl.cluster.up import Cluster
    from survey_ctl.errors import UsageError

    cluster = Cluster.load(config)
    names = [h.name for h in cluster.topo.hosts]
    if host is not None and host not in names:
        raise UsageError(f"no host {host} in the topology", hint=f"hosts: {', '.join(names)}")
    with cluster.pool() as pool:
        found = pool.map(lambda conn: guard.read_audit(conn, cluster.topo),
                         [host] if host else names)
    records = sorted((r for rs in found.values() for r in rs), key=lambda r: r.get("time", ""))
    for record in records[-tail:]:
        if as_json:
            console.out.out(json.dumps(record, ensure_ascii=False), highlight=False)
        else:
            console.out.print(escape(f"{record.get('time')} {record.get('host')} "
                                     f"{record.get('operator')} [{record.get('command')}] "
                                     f"{record.get('step')}: {record.get('result')}"))
    if not records:
        console.info("no audit records yet")
