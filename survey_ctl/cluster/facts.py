"""What one host holds for the cluster, read in a few round trips over its connection."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from survey_ctl.cluster import firewall
from survey_ctl.cluster.images import ImageFact, remote_images
from survey_ctl.remote.docker import config_hashes, list_containers, state_dir
from survey_ctl.specs.container import LABEL_CLUSTER

if TYPE_CHECKING:
    from survey_ctl.config import Topology
    from survey_ctl.plan import Observed
    from survey_ctl.remote.ssh import HostConnection
    from survey_ctl.specs.container import ContainerSpec

_RESOURCES_SCRIPT = (
    'docker network ls --quiet --filter "label=$1=$2" --format "network {{.Name}}" && '
    'docker volume ls --quiet --filter "label=$1=$2" --format "volume {{.Name}}"'
)


@dataclass
class HostFacts:
    """A host's containers, images, networks, volumes and firewall state for one cluster."""

    host: str
    state: str
    containers: list[Observed]
    images: dict[str, ImageFact | None]
    networks: set[str] = field(default_factory=set)
    volumes: set[str] = field(default_factory=set)
    firewall: str = firewall.UNKNOWN  # current | stale | unknown (not read)

    def image_ids(self) -> dict[str, str]:
        """Image name → ID on the host, for `plan`."""
        return {name: fact.id for name, fact in self.images.items() if fact is not None}


def cluster_resources(conn: HostConnection, cluster: str) -> tuple[set[str], set[str]]:
    """(networks, volumes) labelled with `cluster` on the host (one round trip)."""
    result = conn.run(["sh", "-c", _RESOURCES_SCRIPT, "sh", LABEL_CLUSTER, cluster])
    conn.checked_docker(result, "docker network/volume ls")
    found: dict[str, set[str]] = {"network": set(), "volume": set()}
    for line in result.text.splitlines():
        kind, _, name = line.partition(" ")
        if kind in found and name:
            found[kind].add(name)
    return found["network"], found["volume"]


def observe(conn: HostConnection, topo: Topology, specs: list[ContainerSpec],
            firewall_mode: Literal["check", "apply"] | None = "check") -> HostFacts:
    """Read the host: containers (with live config hashes), images, resources and the
    firewall, all at once, one channel each on the open connection. `firewall_mode`:
    "check" reads it (stale when it cannot be read yet), "apply" (for `up`) runs the
    idempotent apply script instead (current or applied; unknown when it cannot run
    yet: no image to run it through), None leaves it unknown."""
    state = state_dir(conn.home(), topo.cluster)
    with ThreadPoolExecutor(max_workers=4) as workers:
        images_job = workers.submit(remote_images, conn,
                                    list(dict.fromkeys(spec.image for spec in specs)))
        live_job = workers.submit(config_hashes, conn, specs, state)
        seen_job = workers.submit(list_containers, conn, topo.cluster)
        resources_job = workers.submit(cluster_resources, conn, topo.cluster)
        images = images_job.result()
        wall = firewall.UNKNOWN
        if firewall_mode and firewall_checkable(conn, images):
            wall = firewall_state(conn, topo, images, apply=firewall_mode == "apply")
        elif firewall_mode == "check":
            wall = firewall.STALE
        live = live_job.result()
        containers = [dataclasses.replace(seen, config_hashes=live.get(seen.name, {}))
                      for seen in seen_job.result()]
        networks, volumes = resources_job.result()
    return HostFacts(conn.name, state, containers, images, networks, volumes, wall)


def firewall_checkable(conn: HostConnection, images: dict[str, ImageFact | None]) -> bool:
    """True when the firewall can be read as root: SSH as root, or an image to run
    iptables through (see `firewall.run_as_root`)."""
    return conn.host.ssh.user == "root" or any(fact is not None for fact in images.values())


def firewall_state(conn: HostConnection, topo: Topology,
                   images: dict[str, ImageFact | None], apply: bool = False) -> str:
    """Whether the host's firewall chain is current or stale; with `apply`, made
    current: `firewall.CURRENT` or `firewall.APPLIED`."""
    present = [name for name, fact in images.items() if fact is not None]
    return firewall.run_as_root(conn, firewall.apply_script(topo, conn.host), present,
                                "" if apply else "check")
