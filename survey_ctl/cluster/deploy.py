"""`surveyctl deploy` and `rollback`: a rolling, zero-downtime update of the app containers.

A release is an app image tag (`<repo>:<version>`, default `r<UTC time>`), built here
from `app.build` (or an existing image with `--image`) and shipped to the app hosts.
Each replica, one at a time, moves to the new release through a stand-in
(`<name>-next`, on the replica's port + 100; see `specs.cluster.next_app_spec`):

1. start the stand-in on the new image; wait for its health check and for the lb host
   to get 200 from it directly (a stand-in that never gets there is removed, its last
   log lines shown, exit 1: the old container kept serving all along);
2. Nginx: add the stand-in (`nginx -t`, graceful reload), then take the old backend out
   (reload: old workers finish their requests); stop the old container with gunicorn's
   graceful time, remove it;
3. recreate the replica under its own name and port on the new image, health-gated,
   then the same swap back: the replica in, the stand-in out, drained, stopped, removed.

So names, ports and nginx.conf end as `up` makes them, and `up` keeps the release: the
lb host's `<state>/releases.json` records the current release and the previous ones
(the last `KEEP` images stay on the hosts for `rollback`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from survey_ctl import console
from survey_ctl.cluster import firewall, guard
from survey_ctl.cluster.executor import HostRun, remove_containers
from survey_ctl.cluster.facts import HostFacts
from survey_ctl.cluster.images import ImageFact, local_image, remote_images
from survey_ctl.errors import HostError, OperationError, UsageError
from survey_ctl.remote.docker import state_dir
from survey_ctl.specs.cluster import app_backends, app_specs, next_app_spec, nginx_spec

if TYPE_CHECKING:
    from survey_ctl.cluster.up import Cluster
    from survey_ctl.config import Host, Topology
    from survey_ctl.remote.ssh import HostConnection, HostPool
    from survey_ctl.specs.container import ContainerSpec

RELEASES = "releases.json"
KEEP = 3  # releases whose images stay on the hosts
STOP_SECONDS = 25  # gunicorn's graceful_timeout (20 s) plus a margin
SETTLE_SECONDS = 1.0  # for a graceful reload's new workers to take over
LOG_LINES = 20


# ---------------------------------------------------------------- releases (state)


@dataclass
class Releases:
    """The current release (an image tag) and the previous ones, newest first."""

    current: str | None = None
    previous: list[str] = field(default_factory=list)
    ids: dict[str, str] = field(default_factory=dict)  # tag → image ID when deployed

    @classmethod
    def parse(cls, raw: bytes | None) -> Releases:
        """From releases.json's bytes (empty when missing or unreadable)."""
        try:
            data = json.loads(raw or b"{}")
            return cls(data.get("current"), [str(tag) for tag in data.get("previous", [])],
                       {str(k): str(v) for k, v in (data.get("ids") or {}).items()})
        except (ValueError, AttributeError):
            return cls()

    def after(self, tag: str, image_id: str) -> Releases:
        """The record once `tag` is deployed (pure): it is current, the old current first."""
        older = [t for t in [self.current, *self.previous] if t and t != tag][:KEEP * 3]
        ids = {t: i for t, i in {**self.ids, tag: image_id}.items()
               if t in (tag, *older) and i}
        return Releases(tag, older, ids)

    def check_immutable(self, tag: str, image_id: str) -> None:
        """Refuse a release tag that named another image when it was deployed."""
        known = self.ids.get(tag)
        if known and image_id and known != image_id:
            raise UsageError(f"{tag} was deployed as image {known[:19]}, but names "
                             f"{image_id[:19]} now: a release tag must not change",
                             hint="give the new image a new tag (--version), or deploy "
                             "the recorded image")

    def or_baseline(self, image: str, image_id: str | None) -> Releases:
        """This record, or before the first deploy, one whose current release is the
        image `up` runs (`app.image`, when the hosts have it), so `rollback` can return
        to it (pure)."""
        if self.current is not None or not image_id:
            return self
        return Releases(image, [], {image: image_id})

    def dropped(self) -> list[str]:
        """Releases past the last `KEEP` (their images may go)."""
        return self.previous[KEEP - 1:]


def releases_path(conn: HostConnection, topo: Topology) -> str:
    """Where the lb host records the releases."""
    return f"{state_dir(conn.home(), topo.cluster)}/{RELEASES}"


def read_releases(conn: HostConnection, topo: Topology) -> Releases:
    """The releases recorded on the lb host."""
    return Releases.parse(conn.read_file(releases_path(conn, topo)))


def write_releases(conn: HostConnection, topo: Topology, releases: Releases) -> None:
    """Record the releases on the lb host (a whole new file, renamed over the old)."""
    path = releases_path(conn, topo)
    data = json.dumps({"current": releases.current, "previous": releases.previous,
                       "ids": releases.ids}, indent=1)
    conn.put_file(path + ".new", data.encode())
    conn.check(["mv", "-f", path + ".new", path])


def release_tag(topo: Topology, version: str | None, now: float | None = None) -> str:
    """`<app image repository>:<version or rYYYYmmdd-HHMMSS>` (pure)."""
    repo = topo.app.image.rsplit(":", 1)[0] if ":" in topo.app.image.rsplit("/", 1)[-1] \
        else topo.app.image
    return f"{repo}:{version or time.strftime('r%Y%m%d-%H%M%S', time.gmtime(now))}"


# ---------------------------------------------------------------- one replica


@dataclass
class Deployer:
    """One deploy: the pool, the lb connection, the live backends and what was done."""

    cluster: Cluster
    pool: HostPool
    command: str
    tag: str
    backends: list[str] = field(default_factory=list)

    @property
    def topo(self) -> Topology:
        """The topology."""
        return self.cluster.topo

    def say(self, host: str, message: str, audit: bool = True) -> None:
        """Progress on stderr, and a record in the host's audit log."""
        console.info(f"{host}: {message}")
        if audit:
            guard.record(self.pool.get(host), self.topo, self.command, message, "ok")

    def run_on(self, host: str) -> HostRun:
        """An executor for `host` with its state folder and the release image's facts."""
        conn = self.pool.get(host)
        images = remote_images(conn, [self.tag])
        facts = HostFacts(host, state_dir(conn.home(), self.topo.cluster), [], images)
        return HostRun(conn, self.topo, facts, lambda message: None)

    def set_backends(self, backends: list[str], why: str) -> None:
        """nginx.conf with `backends`, tested, then a graceful reload."""
        self.backends = backends
        lb = self.topo.lb_host.name
        self.run_on(lb).reload(nginx_spec(self.topo, backends))
        self.say(lb, f"nginx reloaded: {why}")
        time.sleep(SETTLE_SECONDS)

    def start_healthy(self, host: Host, spec: ContainerSpec) -> str:
        """Create and start `spec`; wait until healthy and answering the lb; its backend."""
        runner = self.run_on(host.name)
        remove_containers(runner.conn, [spec.name])  # a leftover of an interrupted deploy
        self.say(host.name, f"start {spec.name} ({spec.image})")
        runner.create(spec)
        backend = f"{spec.ports[0].host_ip}:{spec.ports[0].host_port}"
        problem = self.wait_healthy(runner.conn, spec, backend)
        if problem is not None:
            logs = runner.conn.docker(["logs", "--tail", str(LOG_LINES), spec.name], check=False)
            remove_containers(runner.conn, [spec.name])
            guard.record(runner.conn, self.topo, self.command, f"start {spec.name}",
                         f"failed: {problem}")
            text = (logs.stdout + logs.stderr).decode("utf-8", "replace").rstrip()
            console.err.out(f"last {LOG_LINES} log lines of {spec.name} on {host.name}:\n{text}",
                            highlight=False)
            raise HostError(host.name, f"{spec.name} ({spec.image}) {problem}; it was removed "
                            "and the running containers keep serving",
                            hint="its last log lines are above; fix the image and deploy again")
        return backend

    def wait_healthy(self, conn: HostConnection, spec: ContainerSpec,
                     backend: str) -> str | None:
        """None once `spec` is healthy and the lb host gets 200 from it, else the problem."""
        from survey_ctl.checks.probes import http_get

        check = self.topo.app.healthcheck
        deadline = time.monotonic() + check.interval * check.retries + check.timeout + 10
        lb = self.pool.get(self.topo.lb_host.name)
        address, port = backend.rsplit(":", 1)
        state = ""
        while time.monotonic() < deadline:
            shown = conn.docker(["inspect", "--format", "{{.State.Status}} "
                                 "{{if .State.Health}}{{.State.Health.Status}}{{end}}",
                                 spec.name], check=False)
            state = shown.text.strip()
            if state.startswith(("exited", "dead")) or state.endswith("unhealthy"):
                return f"did not become healthy ({state})"
            if state == "running healthy":
                probe = http_get(lb, address, int(port), check.path)
                if probe.ok:
                    return None
                state = f"healthy, but the lb host gets {probe.status or probe.error}"
            time.sleep(0.5)
        return f"did not become healthy in time ({state or 'unknown'})"

    def retire(self, host: Host, name: str) -> None:
        """Stop a container that Nginx no longer sends to (gunicorn finishes), remove it."""
        conn = self.pool.get(host.name)
        conn.docker(["stop", "--time", str(STOP_SECONDS), name], timeout=STOP_SECONDS + 60,
                    check=False)
        remove_containers(conn, [name])
        self.say(host.name, f"stopped and removed {name}")

    def swap(self, host: Host, old: str | None, new: ContainerSpec, old_name: str) -> None:
        """Start `new` health-gated, put it in Nginx, take `old` out, drain and remove it."""
        backend = self.start_healthy(host, new)
        with_new = [*self.backends, backend] if old is None else [
            b for pair in ((b, backend) if b == old else (b,) for b in self.backends)
            for b in pair]
        self.set_backends(with_new, f"{new.name} in")
        if old is not None:
            self.set_backends([b for b in with_new if b != old], f"{old_name} out")
        self.retire(host, old_name)

    def replica(self, host: Host, spec: ContainerSpec, replica: int) -> None:
        """Move one replica to the release through its stand-in."""
        stand_in = next_app_spec(self.topo, spec, replica)
        home = f"{spec.ports[0].host_ip}:{spec.ports[0].host_port}"
        self.swap(host, home if home in self.backends else None, stand_in, spec.name)
        self.swap(host, f"{stand_in.ports[0].host_ip}:{stand_in.ports[0].host_port}", spec,
                  stand_in.name)


# ---------------------------------------------------------------- the command


def _image_for(cluster: Cluster, image: str | None, version: str | None,
               verbose: bool) -> tuple[str, str]:
    """(tag, local image ID or "" when only the hosts have it): built, or `--image`."""
    from survey_ctl.cluster.images import _docker_here, build_app_image

    topo = cluster.topo
    if image:
        fact = local_image(image)
        return image, fact.id if fact else ""
    if topo.app.build is None:
        raise UsageError("app.build is not set: there is nothing to build",
                         hint="deploy an image that exists with --image NAME:TAG")
    tag = release_tag(topo, version)
    image_id = build_app_image(topo, verbose)
    import subprocess

    subprocess.run([_docker_here(), "tag", image_id, tag], check=True, capture_output=True)
    return tag, image_id


def _ship(pool: HostPool, topo: Topology, tag: str, image_id: str) -> None:
    """The release image on every app host (shipped from here when it differs)."""
    from survey_ctl.cluster.images import ShipProgress, ensure_images

    built = {tag: image_id} if image_id else {}

    def one(conn: HostConnection) -> None:
        on_host = remote_images(conn, [tag])
        if on_host[tag] is None and image_id and conn.docker(["tag", image_id, tag],
                                                             check=False).ok:
            return  # the host has the image under another tag: nothing to ship
        ensure_images(conn, on_host, built, progress)

    with ShipProgress() as progress:
        pool.map(one, [host.name for host in topo.app_hosts])


def _prune(pool: HostPool, topo: Topology, tags: list[str]) -> None:
    """Remove the images of releases past the last `KEEP` from the app hosts (best effort)."""
    if tags:
        pool.each(lambda conn: conn.docker(["image", "rm", *tags], check=False),
                  [host.name for host in topo.app_hosts])


def deploy_cluster(cluster: Cluster, command: str, image: str | None = None,
                   version: str | None = None, verbose: bool = False,
                   rollback: bool = False) -> str:
    """Roll every app replica to a release (built, `image`, or the previous one for
    `rollback`), one at a time, under the cluster lock; the release deployed."""
    topo = cluster.topo
    started = time.monotonic()
    with cluster.pool() as pool:
        lb = pool.get(topo.lb_host.name)
        with guard.cluster_lock(lb, topo, command):
            first_app = pool.get(topo.app_hosts[0].name)
            running = remote_images(first_app, [topo.app.image])[topo.app.image]
            releases = read_releases(lb, topo).or_baseline(
                topo.app.image, running.id if isinstance(running, ImageFact) else None)
            if rollback:
                if not releases.previous:
                    raise OperationError("no previous release to roll back to",
                                         hint="`surveyctl deploy` records each release")
                image = releases.previous[0]
            tag, image_id = _image_for(cluster, image, version, verbose)
            releases.check_immutable(tag, image_id)
            console.info(f"deploying {tag}")
            _ship(pool, topo, tag, image_id)
            for host in topo.app_hosts:
                present = [name for name, fact in remote_images(
                    pool.get(host.name), [tag]).items() if isinstance(fact, ImageFact)]
                if not present:
                    raise HostError(host.name, f"image {tag} is neither here nor on the host")
                firewall.run_as_root(pool.get(host.name),
                                     firewall.apply_script(topo, host), present)
            deployer = Deployer(cluster, pool, command, tag, list(app_backends(topo)))
            for host in topo.app_hosts:
                for n, spec in enumerate(app_specs(topo, host, tag), start=1):
                    deployer.replica(host, spec, n)
            host_id = remote_images(first_app, [tag])[tag]
            after = releases.after(tag, host_id.id if host_id else image_id)
            if rollback:  # the release rolled back from is not offered again
                after.previous = [t for t in after.previous if t != releases.current]
            write_releases(lb, topo, after)
            guard.record(lb, topo, command, f"release {tag}", "ok")
            _prune(pool, topo, [t for t in after.dropped() if t != tag])
    console.info(f"deployed {tag} in {time.monotonic() - started:.1f}s")
    return tag
