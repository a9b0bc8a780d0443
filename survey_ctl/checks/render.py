"""The `status` dashboard as rich renderables, made from a `Snapshot` (pure).

Every text that came from a host or the topology is escaped before it meets markup.
"""

from __future__ import annotations

from datetime import datetime

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from survey_ctl.checks.snapshot import Check, Level, Snapshot

STYLE: dict[Level, str] = {"ok": "green", "degraded": "yellow", "down": "red"}
MARK: dict[Level, str] = {"ok": "✓", "degraded": "!", "down": "✗"}
WORD: dict[Level, str] = {"ok": "healthy", "degraded": "DEGRADED", "down": "DOWN"}


def duration(seconds: float | None) -> str:
    """`42s`, `5m 03s`, `2h 10m`, `3d 4h` (`-` when unknown)."""
    if seconds is None:
        return "-"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"


def size(count: int | None) -> str:
    """A byte count as `512 B`, `1.2 kB`, `3.4 MB`."""
    if count is None:
        return "-"
    value = float(count)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def ms(seconds: float | None) -> str:
    """Seconds as `12 ms` (`-` when unknown)."""
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


def verdict_cell(check: Check | None) -> Text:
    """`✓ ok`, or the level and its reason, coloured."""
    if check is None:
        return Text("-")
    text = Text(f"{MARK[check.level]} {check.level}", style=STYLE[check.level])
    if not check.ok:
        text.append(f": {check.reason}")
    return text


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold", expand=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def _lookup(snap: Snapshot, section: str) -> dict[str, Check]:
    return {check.name: check for check in snap.section(section)}


def hosts_table(snap: Snapshot) -> Table:
    """Per host: address, roles, SSH connect time and latency, Docker version, verdict."""
    checks = _lookup(snap, "hosts")
    table = _table("hosts", "host", "address", "roles", "ssh connect", "ssh latency", "docker",
                   "verdict")
    for host in snap.hosts:
        table.add_row(escape(host.name), escape(host.address), ", ".join(host.roles),
                      ms(host.connect_s) if host.connect_s is not None else "reused",
                      ms(host.latency_s), escape(host.docker_version or "-"),
                      verdict_cell(checks.get(host.name)))
    return table


def containers_table(snap: Snapshot) -> Table:
    """Per container: state, health, uptime, restarts, image, verdict."""
    checks = _lookup(snap, "containers")
    table = _table("containers", "host", "container", "state", "health", "uptime", "restarts",
                   "image", "verdict")
    for c in snap.containers:
        table.add_row(escape(c.host), escape(c.name), escape(c.state), escape(c.health or "-"),
                      duration(c.uptime_s), str(c.restarts), escape(c.image or "-"),
                      verdict_cell(checks.get(c.name)))
    return table


def balancer_table(snap: Snapshot) -> Table | None:
    """Nginx and each backend: who answered, directly and through Nginx."""
    lb = snap.balancer
    if lb is None:
        return None
    checks = _lookup(snap, "balancer")
    nginx = checks.get("nginx")
    table = _table(f"balancer {lb.url}", "backend", "host", "served by", "direct", "via nginx",
                   "verdict")
    table.add_row("nginx", "", "", "", f"{lb.answered}/{len(lb.requests)}", verdict_cell(nginx))
    for backend in lb.backends:
        probe = backend.direct
        direct = (f"{probe.status} in {ms(probe.latency_s)}" if probe.status is not None
                  else "no answer")
        table.add_row(escape(backend.address), escape(backend.host),
                      escape(probe.served_by or "-"), direct,
                      f"{backend.via_lb}/{len(lb.requests)}",
                      verdict_cell(checks.get(f"{backend.host} {backend.address}")))
    return table


def services_table(snap: Snapshot) -> Table:
    """Redis, MariaDB (from each app container) and the VPN chain, one check a row."""
    table = _table("services", "service", "check", "detail", "verdict")
    labels = {"redis": "redis", "database": "mariadb", "vpn": "vpn"}
    for section, label in labels.items():
        for check in snap.section(section):
            detail = check.reason if check.ok else ""
            table.add_row(label, escape(check.name), escape(detail), verdict_cell(check))
        vpn = snap.vpn
        if section == "vpn" and vpn is not None and vpn.link is not None:
            since = (f", connected {duration(_age(snap.taken_at, vpn.log.connected_at))} ago"
                     if vpn.log.connected_at else "")
            table.add_row(label, "traffic", f"rx {size(vpn.link.rx_bytes)}, tx "
                          f"{size(vpn.link.tx_bytes)}{since}", "")
    return table


def _age(now: datetime, then: datetime | None) -> float | None:
    return None if then is None else max((now - then).total_seconds(), 0.0)


def verdict_lines(snap: Snapshot) -> Text:
    """The overall verdict, then each problem with its hint."""
    level = snap.level
    counts = {lvl: sum(1 for c in snap.checks if c.level == lvl) for lvl in STYLE}
    text = Text()
    text.append(f"{MARK[level]} {snap.cluster}: {WORD[level]}", style=f"bold {STYLE[level]}")
    if level == "ok":
        text.append(f" — all {counts['ok']} checks ok")
    else:
        parts = [f"{counts[lvl]} {lvl}" for lvl in ("down", "degraded") if counts[lvl]]
        text.append(f" — {', '.join(parts)} of {len(snap.checks)} checks")
    text.append(f" ({snap.elapsed_s:.2f} s, {snap.taken_at:%H:%M:%S} UTC)", style="dim")
    for check in snap.problems:
        text.append("\n  ")
        text.append(f"{MARK[check.level]} ", style=STYLE[check.level])
        text.append(f"{check.section} {check.name}: {check.reason}")
        if check.hint:
            text.append(f"\n      hint: {check.hint}", style="dim")
    return text


def dashboard(snap: Snapshot, verdict_first: bool = False) -> RenderableType:
    """The whole dashboard: hosts, containers, balancer, services, and the verdict last
    (or first: a live view taller than the terminal is cut at the bottom)."""
    parts: list[RenderableType] = [hosts_table(snap), containers_table(snap)]
    balancer = balancer_table(snap)
    if balancer is not None:
        parts.append(balancer)
    parts.append(services_table(snap))
    if verdict_first:
        parts.insert(0, verdict_lines(snap))
    else:
        parts.append(verdict_lines(snap))
    return Group(*parts)
