"""A fan-out lab: many light "VMs" beside the main lab, for measuring how cost grows.

`surveyctl lab fanout up --app-hosts 24` builds `lb`, `app1`…`app24` (Docker-in-Docker
VMs, as in the main lab) and `cloud` (OpenVPN + MariaDB) under its own name
(`surveyctl-fanout24-*`), label value, Docker network and subnet (default
172.31.(100+N).0/24), with its files in `.lab-fanout24/`. It shares only the cached lab
images (read-only) with the main lab, whose constants and code paths stay as they are.
The VM image adds python3 and python3-requests (what Ansible's docker modules need on
a managed host); the main lab's VM image is unchanged.
"""

from __future__ import annotations

import ipaddress
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from survey_ctl.errors import LabError, UsageError
from survey_ctl.lab import spec as lab_spec
from survey_ctl.lab.files import write_file
from survey_ctl.lab.spec import LAB_NAME, LABEL, LABEL_DIR, LABEL_SPEC, BuiltImage, RootfsImage

MAX_APP_HOSTS = 150
PARALLEL_MACHINES = 4  # dockerd start-ups are CPU-heavy on 2 cores

VM_PY_IMAGE = BuiltImage(
    f"{LAB_NAME}/vm-py:latest",
    RootfsImage("vm-py", (*lab_spec.VM_IMAGE.rootfs.packages, "python3", "python3-requests")),
    "lab", "machine.Dockerfile",
)


@dataclass(frozen=True)
class FanoutHost:
    """One machine of a fan-out lab (the attributes `lab.machines` reads from a host)."""

    name: str
    address: str
    kind: str
    prefix: str

    @property
    def container(self) -> str:
        """The container that plays this host."""
        return f"{self.prefix}-{self.name}"

    @property
    def volume(self) -> str:
        """The volume holding the host's state."""
        return f"{self.prefix}-{self.name}-data"


@dataclass(frozen=True)
class Fanout:
    """A fan-out lab: its name, number of app hosts and subnet (pure data)."""

    app_hosts: int
    name: str = ""
    subnet: str = ""

    def __post_init__(self) -> None:
        if not 1 <= self.app_hosts <= MAX_APP_HOSTS:
            raise UsageError(f"--app-hosts must be between 1 and {MAX_APP_HOSTS}",
                             "use e.g. --app-hosts 12 or 24")
        if not self.name:
            object.__setattr__(self, "name", f"fanout{self.app_hosts}")
        if not self.name.isalnum() or not self.name.islower() or self.prefix == LAB_NAME:
            raise UsageError(f"fan-out lab name {self.name!r}: use lower-case letters and "
                             "digits, not 'lab'", "e.g. --name fanout24")
        if not self.subnet:
            object.__setattr__(self, "subnet", f"172.31.{100 + self.app_hosts}.0/24")
        network = ipaddress.ip_network(self.subnet)
        if network.overlaps(ipaddress.ip_network(lab_spec.SUBNET)):
            raise UsageError(f"{self.subnet} overlaps the main lab's {lab_spec.SUBNET}",
                             "pick another --subnet")
        if network.num_addresses < self.app_hosts + 16:
            raise UsageError(f"{self.subnet} is too small for {self.app_hosts} app hosts",
                             "use a /24")

    @property
    def prefix(self) -> str:
        """Names of containers, volumes and the network start with it; the label value."""
        return f"surveyctl-{self.name}"

    @property
    def network(self) -> str:
        """The Docker network's name."""
        return f"{self.prefix}-net"

    def address(self, index: int) -> str:
        """The `index`-th address of the subnet."""
        return str(ipaddress.ip_network(self.subnet).network_address + index)

    @property
    def gateway(self) -> str:
        """The bridge's address (this machine)."""
        return self.address(1)

    @property
    def hosts(self) -> tuple[FanoutHost, ...]:
        """lb (.10), app1…appN (.11…), cloud (.5)."""
        made = [FanoutHost("lb", self.address(10), "vm", self.prefix)]
        made += [FanoutHost(f"app{n}", self.address(10 + n), "vm", self.prefix)
                 for n in range(1, self.app_hosts + 1)]
        made.append(FanoutHost("cloud", self.address(5), "cloud", self.prefix))
        return tuple(made)

    @property
    def labels(self) -> dict[str, str]:
        """The label on everything this lab makes (not the main lab's value)."""
        return {LABEL: self.prefix}

    def topology(self, lab_dir: Path, repo: Path) -> dict[str, Any]:
        """The topology: the main lab's, with this lab's hosts, cluster name and files."""
        from survey_ctl.lab import topology_writer

        topo = topology_writer.topology(lab_dir, repo)
        topo["cluster"] = self.name
        topo["hosts"] = [{"name": "lb", "address": self.address(10),
                          "roles": ["lb", "vpn", "redis"]}]
        topo["hosts"] += [{"name": h.name, "address": h.address, "roles": ["app"]}
                          for h in self.hosts if h.name.startswith("app")]
        return topo


def default_dir(fanout: Fanout) -> Path:
    """`.lab-<name>`."""
    return Path(f".lab-{fanout.name}")


# ---------------------------------------------------------------- doing it


def _credentials(lab_dir: Path, fanout: Fanout, hosts_dir: Path) -> None:
    """The main lab's credentials and cloud configuration (written by its own code, into
    this lab's folder), then this lab's client profile and the extra hosts' keys."""
    from survey_ctl.lab import pki
    from survey_ctl.lab.lifecycle import PKI_DIR, _write_credentials
    from survey_ctl.lab.topology_writer import KEY_FILE, VPN_PROFILE

    _write_credentials(lab_dir)
    vpn = pki.ensure_pki(lab_dir / PKI_DIR)
    write_file(lab_dir / VPN_PROFILE, pki.client_profile(vpn, fanout.hosts[-1].address), 0o600)
    public_key = pki.ensure_ssh_keypair(lab_dir / KEY_FILE)
    for h in fanout.hosts:
        write_file(hosts_dir / h.name / "authorized_keys", public_key, 0o644)
        pki.ensure_ssh_keypair(hosts_dir / h.name / "ssh_host_ed25519_key")


def _network(client, fanout: Fanout, lab_dir: Path) -> None:
    import docker

    try:
        network = client.networks.get(fanout.network)
    except docker.errors.NotFound:
        network = None
    if network is not None:
        if (network.attrs.get("Labels") or {}).get(LABEL) != fanout.prefix:
            raise LabError(f"a Docker network named {fanout.network} exists and is not this "
                           "fan-out lab's", f"remove it (`docker network rm {fanout.network}`)")
        return
    for other in client.networks.list():
        configs = (other.attrs.get("IPAM") or {}).get("Config") or []
        if any(c.get("Subnet") == fanout.subnet for c in configs):
            raise LabError(f"the Docker network {other.name} already uses {fanout.subnet}",
                           "pick another --subnet")
    ipam = docker.types.IPAMConfig(pool_configs=[
        docker.types.IPAMPool(subnet=fanout.subnet, gateway=fanout.gateway)])
    client.networks.create(fanout.network, driver="bridge", internal=True, ipam=ipam,
                           labels={**fanout.labels, LABEL_DIR: str(lab_dir)})


def _machine(client, fanout: Fanout, h: FanoutHost, conf_dir: Path, image_id: str) -> str:
    """Create (or recreate when its spec changed) and start one host; wait for it."""
    import docker

    from survey_ctl.lab import machines

    spec = machines.MachineSpec(h, image_id, conf_dir, machines.folder_hash(conf_dir))  # type: ignore[arg-type]
    digest = spec.digest()
    container = machines.get_container(client, h)  # type: ignore[arg-type]
    if container is not None and (container.labels or {}).get(LABEL_SPEC) != digest:
        container.remove(force=True)
        container = None
    if container is None:
        try:
            client.volumes.get(h.volume)
        except docker.errors.NotFound:
            client.volumes.create(h.volume, labels=fanout.labels)
        api = client.api
        networking = api.create_networking_config(
            {fanout.network: api.create_endpoint_config(ipv4_address=h.address)})
        host_config = api.create_host_config(**spec.host_config_args())
        if h.kind == "vm":
            host_config["MaskedPaths"] = []
            host_config["ReadonlyPaths"] = []
        args = spec.create_args()
        args["labels"] = {**fanout.labels, LABEL_SPEC: digest}
        api.create_container(**args, host_config=host_config, networking_config=networking)
        container = client.containers.get(h.container)
    container.reload()
    if container.status != "running":
        container.start()
    machines.wait_ready(client, h)  # type: ignore[arg-type]
    return machines.host_key(client, h)  # type: ignore[arg-type]


def up(fanout: Fanout, lab_dir: Path) -> dict[str, Any]:
    """Build or repair the fan-out lab; its files go to `lab_dir`."""
    from survey_ctl.lab import host_tools, images, wheels
    from survey_ctl.lab.lifecycle import HOSTS_DIR, _engine
    from survey_ctl.lab.progress import Steps
    from survey_ctl.lab.ssh_check import check_login
    from survey_ctl.lab.topology_writer import KEY_FILE, KNOWN_HOSTS, TOPOLOGY

    lab_dir = lab_dir.resolve()
    with Steps() as steps, host_tools.docker_errors("building the fan-out lab"):
        client = _engine(steps)
        repo = host_tools.repo_root()
        images.ensure_images(client, steps, repo / "stacks")
        images._ensure_built(client, steps, repo / "stacks", VM_PY_IMAGE)
        with steps.step("app wheelhouse (stacks/app/wheels)") as step:
            wheels.ensure_wheelhouse(client, repo, step)
        hosts_dir = lab_dir / HOSTS_DIR
        with steps.step(f"keys, certificates and secrets in {lab_dir}"):
            _credentials(lab_dir, fanout, hosts_dir)
        with steps.step(f"network {fanout.network} ({fanout.subnet})"):
            _network(client, fanout, lab_dir)
        ids = {"vm": client.images.get(VM_PY_IMAGE.tag).id,
               "cloud": client.images.get(lab_spec.CLOUD_IMAGE.tag).id}
        with steps.step(f"{len(fanout.hosts)} machines, {PARALLEL_MACHINES} at a time"), \
                ThreadPoolExecutor(max_workers=PARALLEL_MACHINES) as pool:
            futures = {h.name: pool.submit(_machine, client, fanout, h, hosts_dir / h.name,
                                           ids[h.kind]) for h in fanout.hosts}
            keys = {name: future.result() for name, future in futures.items()}
        with steps.step("topology, known_hosts, strict SSH logins"):
            write_file(lab_dir / KNOWN_HOSTS, "".join(
                f"{h.address} {keys[h.name]}\n" for h in fanout.hosts), 0o644)
            body = yaml.safe_dump(fanout.topology(lab_dir, repo), sort_keys=False)
            write_file(lab_dir / TOPOLOGY, f"# fan-out lab {fanout.name} (surveyctl lab fanout "
                       "up); secrets are in .env\n" + body, 0o644)
            with ThreadPoolExecutor(max_workers=8) as pool:
                list(pool.map(lambda h: check_login(h, lab_dir / KEY_FILE,  # type: ignore[arg-type]
                                                    lab_dir / KNOWN_HOSTS), fanout.hosts))
        elapsed = steps.elapsed
    return {"dir": str(lab_dir), "topology": str(lab_dir / TOPOLOGY), "seconds": elapsed,
            "hosts": len(fanout.hosts)}


def down(fanout: Fanout, lab_dir: Path) -> dict[str, list[str]]:
    """Remove this fan-out lab's containers, network, volumes and files (nothing else)."""
    from survey_ctl.lab import host_tools, machines
    from survey_ctl.lab.lifecycle import remove_lab_files

    with host_tools.docker_errors("removing the fan-out lab"):
        found: dict[str, list[str]] = machines.remove_all(host_tools.docker_client(),
                                                          fanout.prefix)
    found["files"] = [str(p) for p in remove_lab_files(lab_dir.resolve())]
    return found
