"""The lab's machines: its network, volumes and the containers that play the hosts."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from survey_ctl.errors import LabError
from survey_ctl.lab.spec import (
    GATEWAY,
    LAB_NAME,
    LABEL,
    LABEL_DIR,
    LABEL_SPEC,
    NETWORK,
    SUBNET,
    VPN_SERVER_ADDRESS,
    Host,
    image_of,
)

if TYPE_CHECKING:
    import docker

CONF_MOUNT = "/etc/surveyctl-lab"
READY_FILE = "/run/surveyctl-lab-ready"
STOP_TIMEOUT = 20
LABELS = {LABEL: LAB_NAME}


def _not_found():
    import docker

    return docker.errors.NotFound


def lab_network(client: docker.DockerClient):
    """The lab's network, or None."""
    try:
        return client.networks.get(NETWORK)
    except _not_found():
        return None


def lab_dir_of(client: docker.DockerClient) -> Path | None:
    """The folder the existing lab wrote its files to, or None if there is no lab."""
    network = lab_network(client)
    if network is None:
        return None
    value = (network.attrs.get("Labels") or {}).get(LABEL_DIR)
    return Path(value) if value else None


def ensure_network(client: docker.DockerClient, lab_dir: Path) -> str:
    """Create the lab's internal network with its fixed subnet, or check the one there.

    The caller has checked that an existing lab belongs to `lab_dir`.
    """
    network = lab_network(client)
    if network is not None:
        labels = network.attrs.get("Labels") or {}
        if labels.get(LABEL) != LAB_NAME:
            raise LabError(
                f"a Docker network named {NETWORK} exists and is not the lab's",
                f"remove it (`docker network rm {NETWORK}`) or rename it, then run `lab up`",
            )
        return "reused"
    for other in client.networks.list():
        configs = (other.attrs.get("IPAM") or {}).get("Config") or []
        if any(c.get("Subnet") == SUBNET for c in configs):
            raise LabError(
                f"the Docker network {other.name} already uses the lab's subnet {SUBNET}",
                "remove that network, then run `lab up` again",
            )
    import docker

    ipam = docker.types.IPAMConfig(
        pool_configs=[docker.types.IPAMPool(subnet=SUBNET, gateway=GATEWAY)]
    )
    client.networks.create(
        NETWORK,
        driver="bridge",
        internal=True,  # no route out: lab traffic stays on lab addresses
        ipam=ipam,
        labels={**LABELS, LABEL_DIR: str(lab_dir)},
    )
    return "created"


def ensure_volume(client: docker.DockerClient, name: str) -> None:
    """Create the labelled volume `name` unless it exists."""
    try:
        client.volumes.get(name)
    except _not_found():
        client.volumes.create(name, labels=LABELS)


@dataclass(frozen=True)
class MachineSpec:
    """Everything a host's container is created from (pure data)."""

    host: Host
    image_id: str
    conf_dir: Path
    conf_hash: str

    def create_args(self) -> dict[str, Any]:
        """Arguments of the Engine API's container create (without the host config)."""
        return {
            "image": self.image_id,
            "name": self.host.container,
            "hostname": self.host.name,
            "environment": {"LAB_ROLE": self.host.kind, "LAB_VPN_ADDRESS": VPN_SERVER_ADDRESS},
            "labels": {**LABELS, LABEL_SPEC: self.digest()},
            "stop_timeout": STOP_TIMEOUT,
        }

    def host_config_args(self) -> dict[str, Any]:
        """Arguments of the container's host config: capabilities, devices, mounts."""
        vm = self.host.kind == "vm"
        binds = {
            str(self.conf_dir): {"bind": CONF_MOUNT, "mode": "ro"},
            self.host.volume: {"bind": "/var/lib/docker" if vm else "/var/lib/mysql", "mode": "rw"},
        }
        args: dict[str, Any] = {
            "binds": binds,
            "devices": ["/dev/net/tun:/dev/net/tun:rwm"],
            "tmpfs": {"/run": "rw,exec,nosuid,size=256m"},
            "restart_policy": {"Name": "unless-stopped"},
            "init": True,
        }
        if vm:  # Docker-in-Docker: the flags that work on these machines (see lab.md)
            binds["/sys/fs/cgroup"] = {"bind": "/sys/fs/cgroup", "mode": "rw"}
            args["cap_add"] = ["ALL"]
            args["cap_drop"] = ["SYS_RESOURCE"]
            args["security_opt"] = ["seccomp=unconfined", "apparmor=unconfined"]
        else:
            args["cap_add"] = ["NET_ADMIN"]
        return args

    def digest(self) -> str:
        """Hash of the spec: a container with another hash is out of date."""
        data = {
            "host": [self.host.name, self.host.address, self.host.kind],
            "image": self.image_id,
            "conf": self.conf_hash,
            "hc": json.dumps(self.host_config_args(), sort_keys=True, default=str),
        }
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def folder_hash(folder: Path) -> str:
    """Hash of the files in `folder` (the host's mounted configuration)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def machine_spec(client: docker.DockerClient, host: Host, conf_dir: Path) -> MachineSpec:
    """The spec of `host` from the current image and its configuration folder."""
    image = client.images.get(image_of(host).tag)
    return MachineSpec(host, image.id, conf_dir, folder_hash(conf_dir))


def get_container(client: docker.DockerClient, host: Host):
    """The container playing `host`, or None."""
    try:
        return client.containers.get(host.container)
    except _not_found():
        return None


def ensure_machine(client: docker.DockerClient, spec: MachineSpec) -> str:
    """Create, recreate or start the host's container; says what it did."""
    container = get_container(client, spec.host)
    did = "reused"
    if container is not None and (container.labels or {}).get(LABEL_SPEC) != spec.digest():
        container.remove(force=True)
        container, did = None, "recreated"
    if container is None:
        ensure_volume(client, spec.host.volume)
        api = client.api
        networking = api.create_networking_config(
            {NETWORK: api.create_endpoint_config(ipv4_address=spec.host.address)}
        )
        host_config = api.create_host_config(**spec.host_config_args())
        if spec.host.kind == "vm":  # `--security-opt systempaths=unconfined`, as the CLI sends it
            host_config["MaskedPaths"] = []
            host_config["ReadonlyPaths"] = []
        api.create_container(
            **spec.create_args(), host_config=host_config, networking_config=networking
        )
        container = client.containers.get(spec.host.container)
        did = "created" if did == "reused" else did
    if connect(client, spec.host):
        did = f"{did}, reconnected"
    container.reload()
    if container.status != "running":
        container.start()
        did = "started" if did == "reused" else did
    return did


def is_connected(client: docker.DockerClient, host: Host) -> bool:
    """True when the host's container is attached to the lab network."""
    container = get_container(client, host)
    if container is None:
        return False
    return NETWORK in (container.attrs.get("NetworkSettings", {}).get("Networks") or {})


def connect(client: docker.DockerClient, host: Host) -> bool:
    """Attach the host to the lab network at its fixed address; False if it already was."""
    if is_connected(client, host):
        return False
    network = lab_network(client)
    if network is None:
        raise LabError("the lab network is missing", "run `surveyctl lab up` to repair the lab")
    network.connect(host.container, ipv4_address=host.address)
    container = get_container(client, host)
    if container is not None and container.status == "running":
        drop_default_route(client, host)
    return True


def drop_default_route(client: docker.DockerClient, host: Host) -> None:
    """Remove the default route Docker gives on connect: lab traffic stays in the lab."""
    run_in(client, host, ["ip", "route", "del", "default"])


def disconnect(client: docker.DockerClient, host: Host) -> bool:
    """Detach the host from the lab network; False if it already was."""
    if not is_connected(client, host):
        return False
    network = lab_network(client)
    assert network is not None
    network.disconnect(host.container)
    return True


def run_in(client: docker.DockerClient, host: Host, argv: list[str]) -> tuple[int, str]:
    """Run `argv` inside the host's container: (exit code, output)."""
    container = get_container(client, host)
    if container is None:
        return -1, "no container"
    code, output = container.exec_run(argv)
    return code, output.decode(errors="replace")


def wait_ready(client: docker.DockerClient, host: Host, timeout: float = 180) -> None:
    """Wait until the host's entrypoint has started its services."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        container = get_container(client, host)
        if container is None:
            raise LabError(f"{host.name}: its container disappeared", "run `lab up` again")
        if container.status == "running":
            code, _ = run_in(client, host, ["test", "-f", READY_FILE])
            if code == 0:
                return
        time.sleep(0.5)
    tail = get_container(client, host).logs(tail=5).decode(errors="replace").strip()
    raise LabError(
        f"{host.name} was not ready within {timeout:.0f} s; last log lines: "
        + " | ".join(tail.splitlines()),
        f"see `docker logs {host.container}`, then run `surveyctl lab up` again",
    )


def host_key(client: docker.DockerClient, host: Host) -> str:
    """The host's SSH host key as `TYPE BASE64`."""
    code, output = run_in(client, host, ["cat", "/etc/ssh/ssh_host_ed25519_key.pub"])
    if code != 0:
        raise LabError(f"{host.name}: no SSH host key yet", "run `surveyctl lab up` again")
    key_type, key_b64 = output.split()[:2]
    return f"{key_type} {key_b64}"


def stop(client: docker.DockerClient, host: Host) -> bool:
    """Stop the host's container (like powering the machine off); False if it was not running."""
    container = _existing(client, host)
    if container.status != "running":
        return False
    container.stop(timeout=STOP_TIMEOUT)
    return True


def start(client: docker.DockerClient, host: Host) -> bool:
    """Start the host's container and wait for its services; False if it was running."""
    container = _existing(client, host)
    was_running = container.status == "running"
    if not was_running:
        container.start()
    wait_ready(client, host)
    return not was_running


def pause(client: docker.DockerClient, host: Host) -> bool:
    """Freeze every process of the host (a hung machine); False if it was not running."""
    container = _existing(client, host)
    if container.status != "running":
        return False
    container.pause()
    return True


def unpause(client: docker.DockerClient, host: Host) -> bool:
    """Let a frozen host run again; False if it was not paused."""
    container = _existing(client, host)
    if container.status != "paused":
        return False
    container.unpause()
    return True


def _existing(client: docker.DockerClient, host: Host):
    container = get_container(client, host)
    if container is None:
        raise LabError(f"{host.name} does not exist", "run `surveyctl lab up` first")
    return container


def lab_objects(client: docker.DockerClient, lab: str = LAB_NAME) -> dict[str, list[str]]:
    """Names of every container, network and volume labelled as the lab's (`lab`: the
    label's value; a fan-out lab has its own)."""
    only = {"label": f"{LABEL}={lab}"}
    return {
        "containers": sorted(c.name for c in client.containers.list(all=True, filters=only)),
        "networks": sorted(n.name for n in client.networks.list(filters=only)),
        "volumes": sorted(v.name for v in client.volumes.list(filters=only)),
    }


def remove_all(client: docker.DockerClient, lab: str = LAB_NAME) -> dict[str, list[str]]:
    """Remove every container, network and volume labelled as the lab's; returns their names."""
    found = lab_objects(client, lab)
    for name in found["containers"]:
        client.containers.get(name).remove(force=True, v=True)
    for name in found["networks"]:
        client.networks.get(name).remove()
    for name in found["volumes"]:
        client.volumes.get(name).remove(force=True)
    return found


def machine_state(client: docker.DockerClient, host: Host) -> dict[str, Any]:
    """What the host looks like now: container state, network, services (for `lab status`)."""
    container = get_container(client, host)
    if container is None:
        return {"host": host.name, "address": host.address, "state": "missing"}
    connected = is_connected(client, host)
    running = container.status == "running"
    ready = running and run_in(client, host, ["test", "-f", READY_FILE])[0] == 0
    return {
        "host": host.name,
        "address": host.address,
        "kind": host.kind,
        "state": container.status,
        "network": "connected" if connected else "cut",
        "services": "up" if ready else "down",
    }
