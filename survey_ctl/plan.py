"""Compare desired container specs with what runs on each host, and list the steps (pure).

`observed_from_inspect` turns one `docker inspect` object into an `Observed` fact;
`plan(desired, observed)` yields, per host, one `Step` per container: create, replace
(spec hash or image changed), start (stopped), reload (a live config file such as
nginx.conf changed: rewrite it and run its reload command), remove (labelled ours, no
longer desired) or keep. Applying the steps and planning again gives only "keep".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from survey_ctl.specs.container import LABEL_CLUSTER, LABEL_HASH, LABEL_ROLE, ContainerSpec

StepKind = Literal["create", "replace", "start", "reload", "remove", "keep"]
_STARTABLE = {"exited", "created"}
_BROKEN = {"dead", "removing", "paused"}


@dataclass(frozen=True)
class Observed:
    """What one container on a host is, as `docker inspect` reported it."""

    name: str
    image_id: str
    spec_hash: str | None
    state: str  # created | running | paused | restarting | removing | exited | dead
    health: str | None = None  # starting | healthy | unhealthy, None without a check
    cluster: str | None = None
    role: str | None = None
    # sha256 of each live config file (`ConfigFile` with `reload`) as it is on the host;
    # a missing name counts as changed. See `survey_ctl.remote.docker.config_hashes`.
    config_hashes: Mapping[str, str] = field(default_factory=dict)


def observed_from_inspect(doc: Mapping[str, Any]) -> Observed:
    """An `Observed` from one object of `docker inspect CONTAINER` output."""
    labels = (doc.get("Config") or {}).get("Labels") or {}
    state = doc.get("State") or {}
    health = state.get("Health") or {}
    return Observed(
        name=str(doc.get("Name", "")).lstrip("/"),
        image_id=str(doc.get("Image", "")),
        spec_hash=labels.get(LABEL_HASH),
        state=str(state.get("Status", "unknown")),
        health=health.get("Status") or None,
        cluster=labels.get(LABEL_CLUSTER),
        role=labels.get(LABEL_ROLE),
    )


@dataclass(frozen=True)
class Step:
    """One change (or none: "keep") for one container on one host."""

    host: str
    kind: StepKind
    container: str
    reason: str
    spec: ContainerSpec | None = None  # None for "remove"

    @property
    def changes(self) -> bool:
        """True unless the step is "keep"."""
        return self.kind != "keep"


def _step(host: str, spec: ContainerSpec, seen: Observed | None,
          image_ids: Mapping[str, str]) -> Step:
    def step(kind: StepKind, reason: str) -> Step:
        return Step(host, kind, spec.name, reason, spec)

    if seen is None:
        return step("create", "not on the host")
    if seen.spec_hash != spec.hash_label:
        return step("replace", "its spec changed")
    wanted_image = image_ids.get(spec.image)
    if wanted_image and seen.image_id != wanted_image:
        return step("replace", f"image {spec.image} changed")
    if seen.state in _BROKEN:
        return step("replace", f"it is {seen.state}")
    if seen.state in _STARTABLE:
        return step("start", f"it is {seen.state}")
    stale = [name for name, config in sorted(spec.config_files.items())
             if config.reload and seen.config_hashes.get(name) != config.fingerprint]
    if stale:
        return step("reload", f"{', '.join(stale)} changed")
    return step("keep", f"up to date ({seen.state})")


def plan(desired: Mapping[str, Sequence[ContainerSpec]],
         observed: Mapping[str, Sequence[Observed]],
         image_ids: Mapping[str, str] | None = None) -> list[Step]:
    """The steps that bring every host from `observed` to `desired`.

    Hosts come in `desired` order (then hosts only observed); on each host, the desired
    containers in order, then removals by name. `observed` should hold only containers
    labelled with this cluster; `image_ids` (image name → id), when given, also
    replaces containers whose image id differs.
    """
    ids = image_ids or {}
    steps: list[Step] = []
    hosts = list(desired) + [host for host in observed if host not in desired]
    for host in hosts:
        seen = {container.name: container for container in observed.get(host, ())}
        wanted = desired.get(host, ())
        steps += [_step(host, spec, seen.get(spec.name), ids) for spec in wanted]
        names = {spec.name for spec in wanted}
        steps += [Step(host, "remove", name, "no longer in the topology")
                  for name in sorted(seen) if name not in names]
    return steps


def pending(steps: Sequence[Step]) -> list[Step]:
    """The steps that change something (all but "keep")."""
    return [step for step in steps if step.changes]
