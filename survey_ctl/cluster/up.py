"""`surveyctl plan` and `surveyctl up`: load, build, then per host in parallel: images,
facts, plan, apply; then the end-to-end checks and one report line per host."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape

from survey_ctl import console
from survey_ctl.cluster import firewall, guard
from survey_ctl.cluster.executor import HostPlan, HostRun, plan_host
from survey_ctl.cluster.facts import observe
from survey_ctl.cluster.images import ShipProgress, ensure_images, local_image, transfer_for
from survey_ctl.cluster.lock import host_lock
from survey_ctl.cluster.verify import Check, verify
from survey_ctl.errors import OperationError, SurveyctlError
from survey_ctl.remote.docker import state_dir

if TYPE_CHECKING:
    from pydantic import SecretStr

    from survey_ctl.config import Topology
    from survey_ctl.remote.ssh import HostConnection, HostPool, Outcome
    from survey_ctl.specs.container import ContainerSpec


@dataclass
class HostReport:
    """How one host ended: its plan (changes), checks and the error that stopped it."""

    host: str
    plan: HostPlan | None = None
    error: str | None = None
    hint: str | None = None
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No error and every check passed."""
        return self.error is None and all(check.ok for check in self.checks)


@dataclass
class Cluster:
    """A loaded topology and what should run on each host."""

    topo: Topology
    desired: dict[str, list[ContainerSpec]]
    profile: SecretStr | None = None
    release: str | None = None  # the app image `deploy` recorded, which `up` keeps

    @classmethod
    def load(cls, config: Path) -> Cluster:
        """Load and validate the topology (exit 2 on any problem; no host touched)."""
        from survey_ctl.config import load_topology
        from survey_ctl.specs import cluster_specs, read_vpn_profile

        topo = load_topology(config)
        profile = read_vpn_profile(topo) if topo.vpn_host is not None else None
        return cls(topo, cluster_specs(topo, profile), profile)

    def pin_release(self, pool: HostPool) -> None:
        """Desire the release `deploy` recorded on the lb host (if any) for the apps."""
        from survey_ctl.cluster.deploy import read_releases
        from survey_ctl.specs import cluster_specs

        self.release = read_releases(pool.get(self.topo.lb_host.name), self.topo).current
        if self.release:
            console.info(f"app release {self.release} (recorded by `surveyctl deploy`)")
            self.desired = cluster_specs(self.topo, self.profile, self.release)

    def built(self, build: bool, verbose: bool) -> dict[str, str]:
        """Image name → ID of the images built here (built now if `build`); a deployed
        release is never rebuilt (it is shipped from here if the hosts lack it)."""
        from survey_ctl.cluster.images import build_app_image

        topo = self.topo
        if topo.app.build is None or self.release:
            return {}
        if build:
            return {topo.app.image: build_app_image(topo, verbose)}
        fact = local_image(topo.app.image)
        return {topo.app.image: fact.id if fact else ""}

    def pool(self) -> HostPool:
        """One SSH connection per host, opened on first use."""
        from survey_ctl.remote.ssh import HostPool

        return HostPool(self.topo.hosts)


def _say(host: str):
    return lambda message: console.info(f"{host}: {message}")


def plan_cluster(cluster: Cluster) -> dict[str, HostReport]:
    """Each host's plan, read-only (images are not built, moved or pulled)."""
    with cluster.pool() as pool:
        with contextlib.suppress(SurveyctlError):  # an unreachable lb is reported below
            cluster.pin_release(pool)
        built = cluster.built(build=False, verbose=False)
        named = {spec.image for specs in cluster.desired.values() for spec in specs} - set(built)
        here = {name for name in named if local_image(name) is not None}

        def one(conn: HostConnection) -> HostPlan:
            specs = cluster.desired[conn.name]
            facts = observe(conn, cluster.topo, specs)
            moves = transfer_for(facts.images, built)
            for name in set(moves.pull) & here:
                moves.reasons[name] += "; shipped from here if the host cannot pull it"
            ids = {**facts.image_ids(), **{n: built[n] for n in moves.ship if built.get(n)}}
            return plan_host(cluster.topo, specs, facts, moves.describe(), ids)

        return _reports(pool.each(one))


def up_cluster(cluster: Cluster, verbose: bool = False,
               command: str = "up") -> tuple[dict[str, HostReport], float]:
    """Under the cluster lock: build (while the hosts are read), converge every host in
    parallel, then verify; the reports and the seconds it took."""
    topo = cluster.topo
    started = time.monotonic()
    with cluster.pool() as pool:
        # Every host's SSH handshake at once; an unreachable one is reported, not retried.
        opened = pool.each(lambda connection: connection)
        unreachable = {name: outcome for name, outcome in opened.items()
                       if outcome.error is not None}
        if topo.lb_host.name in unreachable:
            raise unreachable[topo.lb_host.name].error  # type: ignore[misc]  (holds the lock)
        return _converge(cluster, pool, unreachable, verbose, command, started)


def _converge(cluster: Cluster, pool: HostPool, unreachable: dict[str, Outcome],
              verbose: bool, command: str, started: float) -> tuple[dict[str, HostReport], float]:
    """`up_cluster` on the open connections: lock, build, converge, verify, audit."""
    from concurrent.futures import ThreadPoolExecutor

    topo = cluster.topo
    with guard.cluster_lock(pool.get(topo.lb_host.name), topo, command), \
            ThreadPoolExecutor(max_workers=1) as builder, ShipProgress() as progress:
        cluster.pin_release(pool)
        build = builder.submit(cluster.built, True, verbose)  # while the hosts are read

        def one(conn: HostConnection) -> HostPlan:
            specs = cluster.desired[conn.name]
            with host_lock(conn, state_dir(conn.home(), topo.cluster), _say(conn.name)):
                # The firewall's apply script is idempotent and says whether it changed
                # anything: one privileged helper run reads and repairs it.
                facts = observe(conn, topo, specs, firewall_mode="apply")
                if facts.firewall == firewall.APPLIED:
                    _say(conn.name)(firewall.change_line(topo))
                facts.images, moved = ensure_images(conn, facts.images, build.result(),
                                                    progress)
                host_plan = plan_host(topo, specs, facts, moved)
                HostRun(conn, topo, facts, _say(conn.name)).apply(host_plan, specs)
            return host_plan

        done = pool.each(one, [host.name for host in topo.hosts if host.name not in unreachable])
        reports = _reports({host.name: unreachable.get(host.name) or done[host.name]
                            for host in topo.hosts})
        if build.exception() is not None:
            raise build.exception()  # type: ignore[misc]  (once, not once per host)
        converged = [name for name, report in reports.items() if report.error is None]
        console.info(f"checking {', '.join(converged) or 'no host'}")
        for check in verify(pool, topo, cluster.desired, converged):
            reports[check.host].checks.append(check)
        audit(pool, topo, command, reports)
    return reports, time.monotonic() - started


def audit(pool: HostPool, topo: Topology, command: str, reports: dict[str, HostReport]) -> None:
    """One audit record per reachable host: its changes and how it ended."""
    def one(conn: HostConnection) -> None:
        report = reports[conn.name]
        changes = report.plan.lines() if report.plan else []
        step = "; ".join(line for line in changes if not line.startswith("=")) or "no change"
        result = "ok" if report.ok else "failed: " + (report.error or "; ".join(
            f"{c.what}: {c.detail}" for c in report.checks if not c.ok))
        guard.record(conn, topo, command, step, result)

    opened = getattr(pool, "_connections", {})  # never reconnect to a host that failed
    pool.each(one, [name for name in reports if name in opened and opened[name].alive])


def _reports(outcomes) -> dict[str, HostReport]:
    reports = {}
    for name, outcome in outcomes.items():
        if outcome.error is not None:
            reports[name] = HostReport(name, error=outcome.error.message, hint=outcome.error.hint)
        else:
            reports[name] = HostReport(name, plan=outcome.value)
    return reports


# ---------------------------------------------------------------- output


def print_plan(reports: dict[str, HostReport]) -> int:
    """Each host's steps on stdout; the number of changes."""
    total = 0
    for name, report in reports.items():
        if report.plan is None:
            console.out.print(f"[bold]{escape(name)}[/bold]: [red]cannot plan[/red]: "
                              f"{escape(report.error or '')}")
            if report.hint:
                console.out.print(f"    [dim]hint:[/dim] {escape(report.hint)}")
            continue
        total += report.plan.changes
        console.out.print(f"[bold]{escape(name)}[/bold]: {report.plan.changes} change(s)")
        for line in report.plan.lines():
            style = "dim" if line.startswith("=") else ""
            console.out.print(f"  [{style}]{escape(line)}[/{style}]" if style else
                              f"  {escape(line)}")
    return total


def print_report(reports: dict[str, HostReport], what: str) -> None:
    """One line per host on stdout (converged or failed, and why), checks under it."""
    for name, report in reports.items():
        changes = report.plan.changes if report.plan else 0
        if report.ok:
            console.out.print(f"[green]✓[/green] {escape(name)}: {what} ({changes} change(s))")
        else:
            reason = report.error or "; ".join(f"{c.what}: {c.detail}"
                                               for c in report.checks if not c.ok)
            console.out.print(f"[red]✗[/red] {escape(name)}: failed: {escape(reason)}")
            if report.hint:
                console.out.print(f"    [dim]hint:[/dim] {escape(report.hint)}")
        for check in report.checks:
            mark = "[green]✓[/green]" if check.ok else "[red]✗[/red]"
            console.out.print(f"    {mark} {escape(check.what)}: {escape(check.detail)}")


def finish(reports: dict[str, HostReport], what: str) -> None:
    """Raise `OperationError` (exit 1) naming the failed hosts, if any."""
    failed = [name for name, report in reports.items() if not report.ok]
    if failed:
        raise OperationError(f"{what} failed on {', '.join(failed)} "
                             f"({len(reports) - len(failed)} of {len(reports)} host(s) ok)",
                             hint="see each host's line above; fix it and run again (the "
                             "others are already done)")
