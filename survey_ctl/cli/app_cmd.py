"""`surveyctl flask ARGS…`: run one of the survey app's own commands in an app container."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from survey_ctl.cli import app
from survey_ctl.cli.options import DEFAULT_CONFIG, ConfigOption
from survey_ctl.errors import OperationError

FLASK_APP = "survey_app:create_app"


@app.command(
    "flask",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    epilog=(
        "Examples:\n\n"
        "  surveyctl flask create-analyst ana@example.org --generate-password\n\n"
        "  surveyctl flask load-sample-responses 300\n\n"
        "  printf '%s\\n' \"$PW\" | surveyctl flask create-analyst ana@example.org --password-stdin"
    ),
)
def flask_command(
    ctx: typer.Context,
    config: ConfigOption = DEFAULT_CONFIG,
    host: Annotated[
        str | None, typer.Option("--host", help="App host to use (default: the first one up).")
    ] = None,
) -> None:
    """Run a Flask command of the survey app inside a running app container.

    The app's own settings and secrets apply (the container's environment and secret
    files); its output is printed here and its exit code is surveyctl's.
    """
    from survey_ctl.config import load_topology
    from survey_ctl.remote.docker import list_containers
    from survey_ctl.remote.ssh import HostPool

    topo = load_topology(config)
    hosts = [topo.host(host)] if host else topo.app_hosts
    stdin = sys.stdin.buffer.read() if "--password-stdin" in ctx.args else None
    with HostPool(hosts) as pool:
        for candidate in hosts:
            conn = pool.get(candidate.name)
            running = [c.name for c in list_containers(conn, topo.cluster)
                       if c.role == "app" and c.state == "running"]
            if running:
                break
        else:
            raise OperationError("no app container is running",
                                 "run `surveyctl up`, then `surveyctl status`")
        argv = ["exec", "-i", sorted(running)[0], "flask", "--app", FLASK_APP, *ctx.args]
        result = conn.docker(argv, stdin=stdin, timeout=600, check=False)
    sys.stdout.write(result.stdout.decode(errors="replace"))
    sys.stderr.write(result.stderr.decode(errors="replace"))
    raise typer.Exit(result.rc)
