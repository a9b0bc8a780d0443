"""`surveyctl db-migrate`: the app's SQL migrations, applied from here through an SSH tunnel."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from survey_ctl import console
from survey_ctl.cli import app
from survey_ctl.cli.options import DEFAULT_CONFIG, ConfigOption
from survey_ctl.errors import OperationError, UsageError

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pymysql

    from survey_ctl.config import Host, Topology
    from survey_ctl.migrate import MigrationState

STATE_STYLE = {"applied": "green", "pending": "yellow", "changed": "red", "missing": "red"}


@app.command("db-migrate")
def db_migrate(
    config: ConfigOption = DEFAULT_CONFIG,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="List what would be applied; change nothing.")] = False,
    status: Annotated[bool, typer.Option(
        "--status", help="List every migration as applied, pending, changed or missing; "
        "exit 1 unless all are applied.")] = False,
    through: Annotated[str | None, typer.Option(
        "--through", metavar="HOST", help="Reach MariaDB from this host (default: the vpn "
        "host, or the first app host when database.via is direct).")] = None,
) -> None:
    """Apply the app's SQL migrations to MariaDB, through the VPN.

    Migration files come from database.migrations, else app/migrations in the build
    context (app.build.context). The connection is made by the vpn host (an SSH
    direct-tcpip channel, so MariaDB is reached through the VPN exactly as the apps
    reach it) and carries PyMySQL with the topology's database credentials.
    Migrations run in version order under a database lock; each applied file is
    recorded with its checksum, so a second run does nothing.

    Exit codes: 0 done (or, with --status, everything applied); 1 a migration failed
    (the file and the SQL error are named, nothing is recorded for it), MariaDB is
    unreachable, an applied file changed or is missing, or --status found anything not
    applied; 2 topology error.

    Examples:

      surveyctl db-migrate -c .lab/surveyctl.yaml

      surveyctl db-migrate --dry-run

      surveyctl db-migrate --status || echo "the database is not up to date"
    """
    from survey_ctl.config import load_topology
    from survey_ctl.migrate import migrate, migration_status

    if dry_run and status:
        raise UsageError("--dry-run and --status cannot be combined",
                         hint="--status lists every migration; --dry-run only the pending ones")
    topology = load_topology(config)
    folder = _folder(topology)
    with database(topology, through) as conn:
        if status:
            states = migration_status(conn, folder)
            _print_states(states)
            waiting = [s for s in states if s.state != "applied"]
            if waiting:
                console.warn(f"{len(waiting)} of {len(states)} migrations not applied")
                raise typer.Exit(1)
            console.success(f"all {len(states)} migrations applied")
            return
        done = migrate(conn, folder, dry_run=dry_run)
        applied_before = [s for s in migration_status(conn, folder) if s.state == "applied"]
    if dry_run:
        for migration in done:
            console.out.print(f"would apply  {escape(migration.filename)}")
        console.info(f"dry run: {len(done)} pending; nothing changed" if done
                     else "dry run: nothing pending")
        return
    for migration in done:
        console.out.print(f"applied  {escape(migration.filename)}")
    if done:
        console.success(f"applied {len(done)} migration{'s' if len(done) > 1 else ''}")
    else:
        console.success(f"nothing to do: all {len(applied_before)} migrations already applied")


def _folder(topology: Topology) -> Path:
    folder = topology.migrations_dir
    if folder is None:
        raise UsageError("no migration folder in the topology",
                         hint="set database.migrations to the folder of NNNN_name.sql files "
                         "(or app.build.context to this repository)")
    if not folder.is_dir():
        raise UsageError(f"migration folder {folder} does not exist",
                         hint="set database.migrations to the folder of NNNN_name.sql files")
    return folder


def _gateway(topology: Topology, name: str | None) -> Host:
    if name is not None:
        return topology.host(name)
    return topology.vpn_host or topology.app_hosts[0]


@contextmanager
def database(topology: Topology, through: str | None = None
             ) -> Iterator[pymysql.connections.Connection]:
    """PyMySQL to MariaDB over a TCP connection that a cluster host makes (SSH channel)."""
    import pymysql

    from survey_ctl.remote.mysql import connect_through
    from survey_ctl.remote.ssh import connect

    db = topology.database
    host = _gateway(topology, through)
    where = f"MariaDB {db.host}:{db.port} through {host.name}"
    console.info(f"connecting to {where} (SSH)…")
    with connect(host) as ssh:
        channel = ssh.open_tunnel(db.host, db.port)
        try:
            conn = connect_through(channel, user=db.user, password=db.password.get_secret_value(),
                                   database=db.name, charset="utf8mb4", connect_timeout=10,
                                   read_timeout=600, write_timeout=600)
        except pymysql.MySQLError as exc:
            channel.close()
            code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
            detail = exc.args[1] if len(exc.args) > 1 else str(exc)
            hint = ("check database.user and database.password (and the user's grants)"
                    if code in (1044, 1045) else
                    f"check that the database {db.name} exists" if code == 1049 else
                    "run `surveyctl vpn check` to find the broken link"
                    if topology.vpn_host else "check database.host and port")
            raise OperationError(f"cannot log in to {where} as {db.user}: "
                                 f"({code}) {detail}" if code else
                                 f"cannot talk to {where}: {detail}", hint=hint) from None
        try:
            yield conn
        finally:
            conn.close()


def _print_states(states: list[MigrationState]) -> None:
    table = Table("version", "file", "state", "applied at", title="migrations",
                  title_justify="left")
    for state in states:
        style = STATE_STYLE[state.state]
        applied = state.applied_at.strftime("%Y-%m-%d %H:%M:%S") if state.applied_at else "-"
        table.add_row(f"{state.version:04d}", escape(state.filename or state.name),
                      f"[{style}]{state.state}[/{style}]", applied)
    console.out.print(table)
