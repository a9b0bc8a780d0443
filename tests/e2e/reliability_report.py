"""Writes the figures of the last reliability run into docs/reliability.md.

    .venv/bin/python -m tests.e2e.reliability_report [artifacts/reliability.json]

test_reliability.py records each scenario's figures in artifacts/reliability.json; this
renders them as the table between the `figures:begin`/`figures:end` markers of
docs/reliability.md (the prose around it is kept).
"""

from __future__ import annotations

import json
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "reliability.md"
BEGIN, END = "<!-- figures:begin -->", "<!-- figures:end -->"

# scenario key → (title, the figures that matter beyond the load's own counts)
SCENARIOS = {
    "a_deploy": ("a. `deploy` under load", ("deploy_seconds",)),
    "b_app_host_stopped": ("b. app host stopped (`lab stop app2`)",
                           ("stop_command_seconds", "requests_first_5s", "failed_first_5s",
                            "failed_after", "status_red_seconds")),
    "c_vpn_cut": ("c. VPN cut (`vpn down`, then `vpn up`)",
                  ("vpn_check_seconds", "vpn_check_exit", "failed_in_flight_at_cut",
                   "failed_after_cut")),
    "d_redis_restarted": ("d. Redis restarted", ("logins_after_restart",)),
    "e_host_cut": ("e. `up` with app1 cut off, then healed",
                   ("up_cut_exit", "up_cut_seconds", "up_healed_seconds")),
    "f_up_killed": ("f. `up` killed midway, then `up`", ("repair_up_seconds",)),
}


def render(figures: dict[str, dict], when: datetime, machine: str) -> str:
    """The markdown table (and its caption) for one run's figures."""
    lines = [f"Last run: {when:%Y-%m-%d %H:%M} UTC on {machine}.", "",
             "| scenario | requests | failed | app's 503 page | answers acknowledged "
             "| respondents acknowledged / stored in MariaDB | other figures |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for key, (title, extra) in SCENARIOS.items():
        data = figures.get(key)
        if data is None:
            lines.append(f"| {title} | not run | | | | | |")
            continue
        statuses = data.get("statuses", {})
        others = ", ".join(f"{name.replace('_', ' ')}: {data[name]}"
                           for name in extra if name in data)
        if "requests" in data:
            lines.append(
                f"| {title} | {data['requests']} | {data['failed']} | "
                f"{statuses.get('503', 0)} | {data['answers_acknowledged']} | "
                f"{data['respondents_acknowledged']} / {data['stored']} | {others} |")
        else:
            lines.append(f"| {title} | no load | | | | | {others} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    source = Path(argv[0]) if argv else REPO / "artifacts" / "reliability.json"
    figures = json.loads(source.read_text())
    when = datetime.fromtimestamp(source.stat().st_mtime, UTC)
    table = render(figures, when, f"{platform.node() or 'this machine'}")
    text = DOC.read_text()
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(f"{head}{BEGIN}\n{table}\n{END}{tail}")
    print(f"wrote {DOC.relative_to(REPO)} from {source}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
