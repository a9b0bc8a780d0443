"""The status dashboard rendered to text (rich Console(record=True)), by exact equality."""

from __future__ import annotations

import dataclasses

from rich.console import Console

from survey_ctl.checks.render import (
    dashboard,
    duration,
    hosts_table,
    size,
    verdict_lines,
)
from tests.unit.test_checks_snapshot import changed, healthy_snapshot


def text(renderable, width: int = 150) -> str:
    console = Console(record=True, width=width, color_system=None, force_terminal=False)
    console.print(renderable)
    return "\n".join(line.rstrip() for line in console.export_text().splitlines())


def test_hosts_table() -> None:
    assert text(hosts_table(healthy_snapshot())) == """\
hosts
┏━━━━━━┳━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━┳━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━┳━━━━━━━━━┓
┃ host ┃ address      ┃ roles          ┃ ssh connect ┃ ssh latency ┃ docker         ┃ verdict ┃
┡━━━━━━╇━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━╇━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━╇━━━━━━━━━┩
│ lb   │ 172.31.56.10 │ lb, vpn, redis │ 120 ms      │ 4 ms        │ 20.10.24+dfsg1 │ ✓ ok    │
│ app1 │ 172.31.56.11 │ app            │ 110 ms      │ 5 ms        │ 20.10.24+dfsg1 │ ✓ ok    │
│ app2 │ 172.31.56.12 │ app            │ reused      │ 6 ms        │ 20.10.24+dfsg1 │ ✓ ok    │
└──────┴──────────────┴────────────────┴─────────────┴─────────────┴────────────────┴─────────┘"""


def test_healthy_dashboard() -> None:
    shown = text(dashboard(healthy_snapshot()))
    lines = shown.splitlines()
    assert lines[0] == "hosts"
    assert lines[-1] == "✓ pesquisa: healthy — all 20 checks ok (0.42 s, 20:00:00 UTC)"
    for line in (
        "│ app2 │ pesquisa-app-1 │ running │ healthy │ 42s    │ 1        │ pesquisa-app:latest"
        "          │ ✓ ok    │",
        "│ 172.31.56.11:8000 │ app1 │ app1-app-1 │ 200 in 2 ms │ 2/4       │ ✓ ok    │",
        "│ nginx             │      │            │             │ 4/4       │ ✓ ok    │",
        "│ mariadb │ from app1/pesquisa-app-1      │ connect 12 ms, query 1 ms, migration 0002"
        "    │ ✓ ok    │",
        "│ vpn     │ traffic                       │ rx 12.3 kB, tx 23.5 kB, connected 1h 00m ago"
        " │         │",
    ):
        assert line in lines, line
    assert [line for line in lines if not line.startswith(("│", "┏", "┃", "┡", "└"))] == [
        "hosts", "containers", "balancer http://172.31.56.10:80/healthz", "services",
        "✓ pesquisa: healthy — all 20 checks ok (0.42 s, 20:00:00 UTC)"]


def test_problems_are_listed_with_hints() -> None:
    snap = healthy_snapshot()
    stopped = dataclasses.replace(snap.containers[1], state="exited", exit_code=0, health=None,
                                  uptime_s=None)
    bad = changed(snap, containers=(*snap.containers[:1], stopped, *snap.containers[2:]))
    assert text(verdict_lines(bad)) == """\
✗ pesquisa: DOWN — 2 down of 20 checks (0.42 s, 20:00:00 UTC)
  ✗ containers pesquisa-vpn: exited (exit 0)
      hint: start it with `surveyctl vpn up`; `surveyctl logs` shows why it stopped
  ✗ vpn client container pesquisa-vpn: exited on lb
      hint: start it with `surveyctl vpn up` (`surveyctl up` creates it)"""
    assert ("│ lb   │ pesquisa-vpn   │ exited  │ -       │ -      │ 0        │ "
            "surveyctl-lab/openvpn:latest │ ✗ down: exited (exit 0) │") in text(dashboard(bad))


def test_markup_in_host_text_is_not_interpreted() -> None:
    snap = healthy_snapshot()
    odd = dataclasses.replace(snap.hosts[0], docker_version="[bold]20[/bold]")
    assert "[bold]20[/bold]" in text(hosts_table(changed(snap, hosts=(odd,))))


def test_formats() -> None:
    assert [duration(s) for s in (None, 0, 59.9, 60, 3599, 3600, 86399, 90000)] == [
        "-", "0s", "59s", "1m 00s", "59m 59s", "1h 00m", "23h 59m", "1d 1h"]
    assert [size(n) for n in (None, 0, 999, 1000, 12345, 2_500_000, 3 * 10**12)] == [
        "-", "0 B", "999 B", "1.0 kB", "12.3 kB", "2.5 MB", "3000.0 GB"]
