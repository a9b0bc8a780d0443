"""A host's plan (host-level changes + container steps) and applying it over SSH.

Order on a host: images (see `images`), the cluster network and volumes, the firewall
chain (before any port is published), then the container steps, at once. A
container is created, its secrets copied in (`copy_secrets`), and only then started.
A config file with `check` (nginx.conf) is tested before it goes live: on create in a
throwaway container, on reload inside the running one against a candidate file that
is renamed over the live one only when `nginx -t` passes, then reloaded gracefully.
"""

from __future__ import annotations

import dataclasses
import posixpath
import shlex
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from survey_ctl.cluster import firewall
from survey_ctl.errors import HostError
from survey_ctl.plan import Step, pending, plan
from survey_ctl.remote.docker import (
    config_path,
    copy_secrets,
    create_argv,
    upload_config_files,
)
from survey_ctl.specs.container import LABEL_CLUSTER

if TYPE_CHECKING:
    from survey_ctl.cluster.facts import HostFacts
    from survey_ctl.config import Topology
    from survey_ctl.remote.ssh import HostConnection
    from survey_ctl.specs.container import ConfigFile, ContainerSpec

CANDIDATE = ".new"
MAX_STEPS = 4  # container steps at once on one host
SYMBOLS = {"create": "+", "replace": "~", "start": ">", "reload": "↻", "remove": "-",
           "keep": "="}


@dataclass
class HostPlan:
    """What `up` changes on one host: host-level changes, then container steps."""

    host: str
    prep: list[str] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    create_network: bool = False
    create_volumes: list[str] = field(default_factory=list)
    apply_firewall: bool = False

    @property
    def changes(self) -> int:
        """How many changes (host-level and container steps that are not "keep")."""
        return len(self.prep) + len(pending(self.steps))

    def lines(self) -> list[str]:
        """Human lines: host-level changes, then each container step."""
        return ([f"+ {line}" for line in self.prep]
                + [f"{SYMBOLS[s.kind]} {s.kind} {s.container} ({s.reason})" for s in self.steps])


def _networks(specs: list[ContainerSpec]) -> list[str]:
    return list(dict.fromkeys(s.network for s in specs if s.network and not s.network_mode))


def _volumes(specs: list[ContainerSpec]) -> list[str]:
    return list(dict.fromkeys(v.source for s in specs for v in s.volumes if v.kind == "volume"))


def plan_host(topo: Topology, specs: list[ContainerSpec], facts: HostFacts,
              image_moves: list[str] | None = None,
              image_ids: dict[str, str] | None = None) -> HostPlan:
    """The host's plan from its facts (pure). A missing network replaces its containers."""
    result = HostPlan(facts.host, prep=list(image_moves or []))
    missing = [name for name in _networks(specs) if name not in facts.networks]
    if missing:
        result.create_network = True
        result.prep.append(f"create network {', '.join(missing)}")
    result.create_volumes = [v for v in _volumes(specs) if v not in facts.volumes]
    result.prep += [f"create volume {v}" for v in result.create_volumes]
    if facts.firewall in (firewall.STALE, firewall.APPLIED):  # to do, or done while observed
        result.prep.append(firewall.change_line(topo))
    # Unknown: applied (and then counted) if the apply script finds it stale.
    result.apply_firewall = facts.firewall in (firewall.STALE, firewall.UNKNOWN)
    ids = facts.image_ids() if image_ids is None else image_ids
    steps = plan({facts.host: specs}, {facts.host: facts.containers}, ids)
    if missing:
        steps = [_renetwork(step, missing) for step in steps]
    result.steps = steps
    return result


def _renetwork(step: Step, missing: list[str]) -> Step:
    if step.kind in ("start", "keep", "reload") and step.spec and step.spec.network in missing:
        return dataclasses.replace(step, kind="replace", reason="its network was missing")
    return step


# ---------------------------------------------------------------- applying


@dataclass
class HostRun:
    """Applying one host's plan: the connection, facts and a progress callback."""

    conn: HostConnection
    topo: Topology
    facts: HostFacts
    say: Callable[[str], None]

    @property
    def images(self) -> list[str]:
        """Images present on the host (for the root helper container)."""
        return [name for name, fact in self.facts.images.items() if fact is not None]

    def docker(self, *args: str, stdin: bytes | None = None) -> str:
        """`docker ARGS` on the host; its stdout."""
        return self.conn.docker(list(args), stdin=stdin).text

    def apply(self, host_plan: HostPlan, specs: list[ContainerSpec]) -> None:
        """Apply `host_plan` (host-level changes, then each container step)."""
        cluster = self.topo.cluster
        label = f"{LABEL_CLUSTER}={cluster}"
        for name in _networks(specs):
            if name not in self.facts.networks:
                self.say(f"create network {name}")
                made = self.conn.docker(["network", "create", "--label", label, name], check=False)
                if not made.ok and "already exists" not in made.error_text:
                    self.conn.checked_docker(made, "docker network create")
        for name in host_plan.create_volumes:
            self.say(f"create volume {name}")
            self.docker("volume", "create", "--label", label, name)
        if host_plan.apply_firewall:  # before any container publishes a port
            line = firewall.change_line(self.topo)
            if firewall.run_as_root(self.conn, firewall.apply_script(self.topo, self.conn.host),
                                    self.images) == firewall.APPLIED:
                self.say(line)
                if line not in host_plan.prep:  # found stale just now: a change after all
                    host_plan.prep.append(line)
        changing = [step for step in host_plan.steps if step.changes]
        for step in changing:
            self.say(f"{step.kind} {step.container} ({step.reason})")
        # Each step touches only its own container (and its own state folder): they run
        # at once, so no container's start-up and first health check waits on another's.
        with ThreadPoolExecutor(max_workers=max(1, min(MAX_STEPS, len(changing)))) as workers:
            done = [workers.submit(self.step, step) for step in changing]
        failed = [job.exception() for job in done if job.exception() is not None]
        if failed:
            raise failed[0]  # type: ignore[misc]

    def step(self, step: Step) -> None:
        """Apply one container step."""
        spec = step.spec
        if step.kind == "remove":
            remove_containers(self.conn, [step.container])
            return
        assert spec is not None
        if step.kind == "replace":
            remove_containers(self.conn, [spec.name])
        if step.kind in ("create", "replace"):
            self.create(spec)
        elif step.kind == "start":
            copy_secrets(self.conn, spec, self.user_of(spec))  # repairs a half-done create
            self.docker("start", spec.name)
        elif step.kind == "reload":
            self.reload(spec)

    def user_of(self, spec: ContainerSpec) -> str:
        """The user the container runs as: `spec.user`, else the image's USER."""
        fact = self.facts.images.get(spec.image)
        return spec.user if spec.user is not None else (fact.user if fact else "")

    def create(self, spec: ContainerSpec) -> None:
        """Configs (tested first), `docker create`, secrets in, `docker start`."""
        self.install_configs(spec, self.test_in_throwaway)
        self.conn.checked_docker(self.conn.run(create_argv(spec, self.facts.state)),
                                 "docker create")
        copy_secrets(self.conn, spec, self.user_of(spec))
        self.docker("start", spec.name)

    def reload(self, spec: ContainerSpec) -> None:
        """New config files, tested inside the running container, then its reload command."""
        changed = self.install_configs(spec, self.test_in_container)
        for config in changed:
            self.docker("exec", spec.name, *config.reload)

    def install_configs(self, spec: ContainerSpec,
                        test: Callable[[ContainerSpec, ConfigFile, str], None]) -> list[ConfigFile]:
        """Upload candidates, `test` each checked one, then rename them over the live files."""
        if not spec.config_files:
            return []
        state = self.facts.state
        upload_config_files(self.conn, spec, state, suffix=CANDIDATE)
        configs = [config for _, config in sorted(spec.config_files.items())]
        try:
            for config in configs:
                if config.check:
                    test(spec, config, config.target + CANDIDATE)
        except HostError:
            self.conn.run(["rm", "-f", *(config_path(state, spec, c) + CANDIDATE
                                         for c in configs)])
            raise
        for config in configs:
            live = config_path(state, spec, config)
            self.conn.check(["mv", "-f", live + CANDIDATE, live])
        return configs

    def test_in_container(self, spec: ContainerSpec, config: ConfigFile, candidate: str) -> None:
        """Run the config's check, on `candidate`, inside the running container."""
        argv = _check_argv(config, candidate)
        result = self.conn.run(["docker", "exec", spec.name, *argv])
        self._checked(result, spec, argv)

    def test_in_throwaway(self, spec: ContainerSpec, config: ConfigFile, candidate: str) -> None:
        """Run the config's check, on `candidate`, in a throwaway container of the image."""
        argv = _check_argv(config, candidate)
        folder = posixpath.dirname(config_path(self.facts.state, spec, config))
        target = posixpath.dirname(config.target)
        result = self.conn.run([
            "docker", "run", "--rm", "--network", "none",
            "--mount", f"type=bind,source={folder},target={target},readonly",
            "--entrypoint", argv[0], spec.image, *argv[1:]])
        self._checked(result, spec, argv)

    def _checked(self, result, spec: ContainerSpec, argv: list[str]) -> None:
        self.conn.checked_docker(result, "docker run/exec", check=False)
        if not result.ok:
            raise HostError(self.conn.name, f"{spec.name}: `{shlex.join(argv)}` refused the new "
                            f"config: {result.error_text}",
                            hint="the live config was left as it was; fix the template or "
                            "topology and run again")


def remove_containers(conn: HostConnection, names: list[str]) -> None:
    """`docker rm --force NAMES`; containers already gone (or going) are fine."""
    result = conn.docker(["rm", "--force", *names], timeout=180, check=False)
    gone = ("No such container", "already in progress")
    if not result.ok and not all(any(g in line for g in gone)
                                 for line in result.stderr.decode().splitlines() if line):
        conn.checked_docker(result, "docker rm")


def _check_argv(config: ConfigFile, candidate: str) -> list[str]:
    """The config's check command aimed at `candidate` instead of the live file (pure)."""
    return [candidate if part == config.target else part for part in config.check]
