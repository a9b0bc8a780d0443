"""Status checks: facts gathered over SSH, verdicts, the dashboard and the JSON document.

- `facts`: typed observations and the pure parsers that make them;
- `probes`: `Prober(topology).snapshot()` gathers them (one connection per host, hosts
  and probes in parallel) — it imports paramiko, so import it inside commands;
- `snapshot`: `Snapshot`, `Check`, the verdict rules (`assess`, `vpn_links`, `vpn_chain`) and
  `document` (the `status --json` document);
- `render`: the rich dashboard.
"""

from survey_ctl.checks.snapshot import (
    LEVELS,
    Check,
    Level,
    Snapshot,
    document,
    vpn_chain,
    vpn_links,
)

__all__ = ["LEVELS", "Check", "Level", "Snapshot", "document", "vpn_chain", "vpn_links"]
