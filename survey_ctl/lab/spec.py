"""What the lab is made of: hosts, addresses, images and names (pure data)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

LAB_NAME = "surveyctl-lab"
LABEL = "surveyctl.lab"  # value: LAB_NAME, on every container, network and volume
LABEL_DIR = "surveyctl.lab.dir"  # on the network: the directory `lab up` wrote
LABEL_SPEC = "surveyctl.lab.spec"  # on containers: hash of what they were made from
LABEL_IMAGE = "surveyctl.lab.image"  # on cached images: "1"
LABEL_KEY = "surveyctl.lab.key"  # on cached images: hash of what they were built from

NETWORK = f"{LAB_NAME}-net"
SUBNET = "172.31.56.0/24"
GATEWAY = "172.31.56.1"
VPN_SUBNET = "10.8.0.0/24"
VPN_SERVER_ADDRESS = "10.8.0.1"
VPN_PORT = 1194
DB_PORT = 3306
DB_NAME = "survey"
DB_USER = "survey"
CLUSTER = "pesquisa"
SSH_USER = "deploy"

RELEASE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
CACHE_DIR = Path("/var/cache/surveyctl-lab")  # debootstrap's downloaded .debs
DOCKERD_LOG = Path("/var/log/surveyctl-lab-dockerd.log")


@dataclass(frozen=True)
class Host:
    """One lab machine: a container with its own address, filesystem and sshd."""

    name: str
    address: str
    kind: str  # "vm" (sshd + Docker Engine) or "cloud" (sshd + OpenVPN + MariaDB)

    @property
    def container(self) -> str:
        """The container that plays this host."""
        return f"{LAB_NAME}-{self.name}"

    @property
    def volume(self) -> str:
        """The volume holding the host's persistent state (/var/lib/docker or MariaDB)."""
        return f"{LAB_NAME}-{self.name}-data"


HOSTS: tuple[Host, ...] = (
    Host("lb", "172.31.56.10", "vm"),
    Host("app1", "172.31.56.11", "vm"),
    Host("app2", "172.31.56.12", "vm"),
    Host("cloud", "172.31.56.20", "cloud"),
)
HOST_NAMES = tuple(h.name for h in HOSTS)


def host(name: str) -> Host:
    """The host called `name` (the caller validates the name)."""
    return next(h for h in HOSTS if h.name == name)


@dataclass(frozen=True)
class RootfsImage:
    """A Debian root made by debootstrap and imported as a base image."""

    name: str
    packages: tuple[str, ...]

    @property
    def tag(self) -> str:
        """The imported image's tag."""
        return f"{LAB_NAME}/rootfs-{self.name}:{RELEASE}"


@dataclass(frozen=True)
class BuiltImage:
    """An image built by a Dockerfile of `stacks/` on top of a rootfs image."""

    tag: str
    rootfs: RootfsImage
    context: str  # folder under stacks/
    dockerfile: str  # file name in that folder


_ROOTFS_VM = RootfsImage(
    "vm",
    ("openssh-server", "docker.io", "iptables", "iproute2", "ca-certificates", "procps"),
)
_ROOTFS_CLOUD = RootfsImage(
    "cloud", ("openssh-server", "openvpn", "mariadb-server", "iproute2", "procps")
)
_ROOTFS_PYTHON = RootfsImage("python", ("python3", "python3-venv", "ca-certificates"))
_ROOTFS_NGINX = RootfsImage("nginx", ("nginx", "libnginx-mod-stream"))
_ROOTFS_REDIS = RootfsImage("redis", ("redis-server",))
_ROOTFS_OPENVPN = RootfsImage("openvpn", ("openvpn", "iproute2", "mariadb-client-core"))

VM_IMAGE = BuiltImage(f"{LAB_NAME}/vm:latest", _ROOTFS_VM, "lab", "machine.Dockerfile")
CLOUD_IMAGE = BuiltImage(f"{LAB_NAME}/cloud:latest", _ROOTFS_CLOUD, "lab", "machine.Dockerfile")
PYTHON_IMAGE = BuiltImage(f"{LAB_NAME}/python:3.11", _ROOTFS_PYTHON, "lab", "python.Dockerfile")
NGINX_IMAGE = BuiltImage(f"{LAB_NAME}/nginx:latest", _ROOTFS_NGINX, "nginx", "Dockerfile")
REDIS_IMAGE = BuiltImage(f"{LAB_NAME}/redis:latest", _ROOTFS_REDIS, "redis", "Dockerfile")
OPENVPN_IMAGE = BuiltImage(f"{LAB_NAME}/openvpn:latest", _ROOTFS_OPENVPN, "openvpn", "Dockerfile")
IMAGES: tuple[BuiltImage, ...] = (
    VM_IMAGE,
    CLOUD_IMAGE,
    PYTHON_IMAGE,
    NGINX_IMAGE,
    REDIS_IMAGE,
    OPENVPN_IMAGE,
)


def image_of(h: Host) -> BuiltImage:
    """The image a host's container runs."""
    return VM_IMAGE if h.kind == "vm" else CLOUD_IMAGE
