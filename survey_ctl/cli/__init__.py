"""The `surveyctl` command line: the root Typer app and the one error boundary."""

from __future__ import annotations

import os
import sys

import typer

from survey_ctl import __version__, console
from survey_ctl.errors import EXIT_FAILED, SurveyctlError

app = typer.Typer(
    name="surveyctl",
    help=(
        "Run the market-survey web app as a load-balanced cluster: Nginx, Flask app "
        "servers, Redis and an OpenVPN path to MariaDB, driven over SSH.\n\n"
        "Examples:\n\n"
        "  surveyctl lab up                # four local test machines\n\n"
        "  surveyctl config validate -c .lab/surveyctl.yaml\n\n"
        "  surveyctl up && surveyctl status --watch"
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

_state = {"debug": bool(os.environ.get("SURVEYCTL_DEBUG"))}


def _version(value: bool) -> None:
    if value:
        console.out.print(f"surveyctl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    if debug:
        _state["debug"] = True


def _register() -> None:
    """Attach the command groups; each module keeps heavy imports inside its commands."""
    from survey_ctl.cli import commands  # noqa: F401  (registers on `app`)


def main() -> None:
    """Console-script entry point: run the app, print errors as one red line.

    Typer (standalone mode) handles usage errors (exit 2) and `typer.Exit`; everything
    else that escapes a command is printed here without a traceback unless --debug.
    """
    _register()
    try:
        app()
    except SurveyctlError as exc:
        if _state["debug"]:
            raise
        console.error(exc.message, exc.hint)
        sys.exit(exc.exit_code)
    except Exception as exc:  # the boundary: never a traceback without --debug
        if _state["debug"]:
            raise
        console.error(
            f"unexpected {type(exc).__name__}: {exc}",
            "run again with --debug for the traceback, and report it",
        )
        sys.exit(EXIT_FAILED)
