"""All terminal output goes through here.

Data goes to stdout (`out`), progress and diagnostics to stderr (`err`). Colour and
live widgets only on a terminal; NO_COLOR is honoured (rich reads it itself).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape

# Off a terminal (a pipe, a file, CI) rich would wrap tables at 80 columns: use COLUMNS,
# else a width that keeps a dashboard row on one line.
PIPE_WIDTH = 120
out = Console(
    highlight=False,
    soft_wrap=True,
    width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else PIPE_WIDTH,
)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def is_interactive() -> bool:
    """True when progress may be drawn live (stderr is a terminal)."""
    return err.is_terminal


def print_json(data: Any) -> None:
    """Print one JSON document on stdout, for machines."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


def info(message: str) -> None:
    """A progress line on stderr."""
    err.print(escape(message))


def success(message: str) -> None:
    """A green line on stderr."""
    err.print(f"[green]✓[/green] {escape(message)}")


def warn(message: str) -> None:
    """A yellow line on stderr."""
    err.print(f"[yellow]![/yellow] {escape(message)}")


def error(message: str, hint: str | None = None) -> None:
    """One red line on stderr, and the hint under it."""
    err.print(f"[bold red]error:[/bold red] {escape(message)}")
    if hint:
        err.print(f"[dim]hint:[/dim] {escape(hint)}")
