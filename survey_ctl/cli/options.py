"""Options shared by every command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ConfigOption = Annotated[
    Path,
    typer.Option(
        "--config",
        "-c",
        envvar="SURVEYCTL_CONFIG",
        help="Topology file.",
        show_default=True,
    ),
]
DEFAULT_CONFIG = Path("surveyctl.yaml")

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
