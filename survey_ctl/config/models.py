"""Pydantic models of the topology file, one per section of topology.md.

Field validators check one value each; `Topology` then checks what spans sections
(roles, duplicates, known_hosts under `strict`) and raises every such problem at once.
Relative paths are resolved against `base_dir` from the validation context (the
topology file's folder). Secrets are `SecretStr` and always serialise as "***".
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PrivateAttr,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from survey_ctl.errors import UsageError

Role = Literal["lb", "app", "redis", "vpn"]
ROLES: tuple[Role, ...] = get_args(Role)
HostKeyPolicy = Literal["strict", "accept-new"]
Algorithm = Literal["round_robin", "least_conn", "ip_hash"]
Via = Literal["vpn", "direct"]
MAX_REPLICAS = 32
REDACTED = "***"

_REFUSED_POLICIES = {"auto-add", "autoadd", "auto_add", "ignore", "accept-any", "accept-all",
                     "no", "off", "none", "insecure", "warn", "accept"}


class Problem(NamedTuple):
    """One thing wrong in a topology: the key path (`hosts[2].ssh.port`) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class TopologyProblems(ValueError):
    """Raised by `Topology` validation for rules that span sections; carries all of them."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(map(str, problems)))
        self.problems = problems


# ---------------------------------------------------------------- value checks


def _not_bool(value: Any) -> Any:
    """Refuse YAML true/false where a number is expected (pydantic would read true as 1)."""
    if isinstance(value, bool):
        raise ValueError("must be a number, not true/false")
    return value


def _port_range(value: int) -> int:
    if not 1 <= value <= 65535:
        raise ValueError("must be a port number in 1..65535")
    return value


def _matching(pattern: str, rule: str) -> AfterValidator:
    """A validator accepting strings that fully match `pattern`, else saying `rule`."""
    regex = re.compile(pattern)

    def check(value: str) -> str:
        if not regex.fullmatch(value):
            raise ValueError(rule)
        return value

    return AfterValidator(check)


_DNS_LABEL = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
_DNS_NAME = re.compile(rf"{_DNS_LABEL}(?:\.{_DNS_LABEL})*\.?")


def _address(value: str) -> str:
    try:
        ipaddress.ip_address(value)
        return value
    except ValueError:
        pass
    if len(value) <= 253 and _DNS_NAME.fullmatch(value) and not re.fullmatch(r"[0-9.]+", value):
        return value
    raise ValueError("must be an IP address or a DNS name")


# Docker's reference grammar (distribution/reference): [domain[:port]/]path[:tag][@digest]
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_PART = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_IMAGE_REF = re.compile(
    rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*(?::[0-9]+)?/)?"
    rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?"
)


def _image_ref(value: str) -> str:
    if len(value) > 255 or not _IMAGE_REF.fullmatch(value):
        raise ValueError(
            "must be an image reference like name:tag, registry/name:tag or name@sha256:…"
            " (lowercase name)"
        )
    return value


def _refuse_insecure_policy(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() in _REFUSED_POLICIES:
        raise ValueError(
            f"{value.strip().lower()!r} is refused: trusting any host key lets a machine in "
            "the middle take the connection (and the secrets sent over it); use strict "
            "(keys already in known_hosts) or accept-new (trust a new host once, refuse "
            "changed keys)"
        )
    return value


def _scalar_to_str(value: Any) -> Any:
    """Environment and build-arg values may be YAML numbers; booleans must be quoted."""
    if isinstance(value, bool):
        raise ValueError("must be a string; quote true/false, e.g. \"true\"")
    if isinstance(value, int | float):
        return str(value)
    return value


def _non_empty_secret(value: SecretStr) -> SecretStr:
    if not value.get_secret_value():
        raise ValueError("must not be empty")
    return value


def _unique(values: tuple[str, ...]) -> tuple[str, ...]:
    twice = sorted({v for v in values if values.count(v) > 1})
    if twice:
        raise ValueError(f"listed more than once: {', '.join(twice)}")
    return values


def _resolve(value: Path, info: ValidationInfo) -> Path:
    """`~` expanded; a relative path joined to the topology file's folder."""
    base = (info.context or {}).get("base_dir") or Path.cwd()
    return _under(Path(base), value)


def _under(base: Path, value: Path) -> Path:
    path = value.expanduser()
    return Path(os.path.normpath(path if path.is_absolute() else base / path))


def _existing(kind: str) -> Callable[[Path], Path]:
    test = Path.is_file if kind == "file" else Path.is_dir

    def check(value: Path) -> Path:
        if not value.exists():
            raise ValueError(f"{kind} not found: {value}")
        if not test(value):
            raise ValueError(f"not a {kind}: {value}")
        return value

    return check


_existing_file = _existing("file")

Number = BeforeValidator(_not_bool)
Port = Annotated[int, Number, AfterValidator(_port_range)]
Seconds = Annotated[float, Number, Field(gt=0, le=3600)]
Redacted = PlainSerializer(lambda _: REDACTED, return_type=str)
Secret = Annotated[SecretStr, AfterValidator(_non_empty_secret), Redacted]
EnvValue = Annotated[SecretStr, BeforeValidator(_scalar_to_str), Redacted]
BuildArg = Annotated[str, BeforeValidator(_scalar_to_str)]
EnvName = Annotated[
    str, _matching(r"[A-Za-z_][A-Za-z0-9_]*", "must be a variable name (letters, digits, _)")
]
ImageRef = Annotated[str, AfterValidator(_image_ref)]
Address = Annotated[str, AfterValidator(_address)]
ResolvedPath = Annotated[Path, AfterValidator(_resolve)]
ExistingFile = Annotated[Path, AfterValidator(_resolve), AfterValidator(_existing_file)]
ExistingDir = Annotated[Path, AfterValidator(_resolve), AfterValidator(_existing("directory"))]
ClusterName = Annotated[str, _matching(
    r"[a-z0-9][a-z0-9_-]{0,31}",
    "must be a Docker-safe name prefix: up to 32 lowercase letters, digits, '-' or '_', "
    "starting with a letter or digit",
)]
HostName = Annotated[str, _matching(
    r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}",
    "must be up to 63 letters, digits, '.', '-' or '_', starting with a letter or digit",
)]
UserName = Annotated[str, _matching(
    r"[A-Za-z_][A-Za-z0-9_.-]{0,31}", "must be a login name (letters, digits, '.', '-', '_')"
)]
PolicyValue = Annotated[HostKeyPolicy, BeforeValidator(_refuse_insecure_policy)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _empty_means_default(cls, data: Any) -> Any:
        """A key left empty in YAML (`lb:`) takes its default, as if it were left out."""
        if not isinstance(data, dict):
            return data
        optional = {f.alias or n for n, f in cls.model_fields.items() if not f.is_required()}
        return {k: v for k, v in data.items() if v is not None or k not in optional}


# ---------------------------------------------------------------- sections


class SSHSettings(_Section):
    """SSH settings: the `ssh` section, and each host's effective (merged) settings."""

    user: UserName
    port: Port = 22
    identity_file: ExistingFile
    known_hosts: ResolvedPath = Field(Path("~/.ssh/known_hosts"), validate_default=True)
    host_key_policy: PolicyValue = "strict"
    connect_timeout: Seconds = 10


class SSHOverride(_Section):
    """A host's `ssh:` mapping: any subset of `SSHSettings`, overriding the defaults."""

    user: UserName | None = None
    port: Port | None = None
    identity_file: ExistingFile | None = None
    known_hosts: ResolvedPath | None = None
    host_key_policy: PolicyValue | None = None
    connect_timeout: Seconds | None = None


class Host(_Section):
    """One machine: a name, an address, its roles and (`.ssh`) its effective SSH settings."""

    name: HostName
    address: Address
    roles: Annotated[tuple[Role, ...], Field(min_length=1), AfterValidator(_unique)]
    ssh_override: SSHOverride | None = Field(None, alias="ssh")
    _ssh: SSHSettings | None = PrivateAttr(None)

    @property
    def ssh(self) -> SSHSettings:
        """Effective SSH settings: the topology's `ssh` defaults merged with this host's."""
        if self._ssh is None:
            raise RuntimeError("Host.ssh is only known on a host of a validated Topology")
        return self._ssh

    def with_ssh(self, settings: SSHSettings) -> Host:
        """A copy of this host with `settings` as its effective SSH settings (tests, tools)."""
        host = self.model_copy()
        host._ssh = settings
        return host


class Build(_Section):
    """How to build the app image on the operator's machine (`app.build`)."""

    context: ExistingDir = Field(Path("."), validate_default=True)
    dockerfile: Path = Field(Path("Dockerfile"), validate_default=True)
    args: dict[EnvName, BuildArg] = Field(default_factory=dict)

    @field_validator("dockerfile")
    @classmethod
    def _dockerfile_in_context(cls, value: Path, info: ValidationInfo) -> Path:
        """The Dockerfile path is relative to the build context (as in Compose)."""
        context = info.data.get("context")
        return _existing_file(_under(context, value)) if context else value


class Healthcheck(_Section):
    """The app's HTTP health check, used by Docker, `deploy` and `status`."""

    path: Annotated[str, _matching(r"/\S*", "must be a URL path starting with '/'")] = "/healthz"
    interval: Seconds = 2
    timeout: Seconds = 2
    retries: Annotated[int, Number, Field(ge=1, le=100)] = 15


class App(_Section):
    """The Flask app servers (`app`)."""

    image: ImageRef
    build: Build | None = None
    replicas: Annotated[int, Number, Field(ge=1, le=MAX_REPLICAS)] = 1
    port: Port = 8000
    env: dict[EnvName, EnvValue] = Field(default_factory=dict)
    healthcheck: Healthcheck = Field(default_factory=Healthcheck)


class LoadBalancer(_Section):
    """The Nginx load balancer on the lb host (`lb`)."""

    image: ImageRef = "nginx:1.27-alpine"
    port: Port = 80
    algorithm: Algorithm = "round_robin"


class Redis(_Section):
    """Redis on the redis host (`redis`): sessions and rate limits."""

    image: ImageRef = "redis:7-alpine"
    port: Port = 6379
    password: Secret


class Database(_Section):
    """The existing MariaDB server (`database`); surveyctl never creates it."""

    host: Address
    port: Port = 3306
    name: Annotated[str, _matching(r"[A-Za-z0-9_$]{1,64}", "must be a MariaDB database name")]
    user: Annotated[str, Field(min_length=1, max_length=80)]
    password: Secret
    via: Via = "vpn"
    migrations: ExistingDir | None = None


class Vpn(_Section):
    """The OpenVPN client on the vpn host (`vpn`)."""

    client_config: ExistingFile
    image: ImageRef = "surveyctl/openvpn:latest"
    interface: Annotated[str, _matching(
        r"[A-Za-z0-9_.-]{1,15}", "must be a network interface name (up to 15 characters)"
    )] = "tun0"


# ---------------------------------------------------------------- the whole file


class Topology(_Section):
    """The validated topology file. Build it with `survey_ctl.config.load_topology`."""

    cluster: ClusterName
    ssh: SSHSettings
    hosts: Annotated[tuple[Host, ...], Field(min_length=1)]
    app: App
    lb: LoadBalancer = Field(default_factory=LoadBalancer)
    redis: Redis
    database: Database
    vpn: Vpn | None = None
    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)
    _path: Path | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _check_across_sections(self, info: ValidationInfo) -> Topology:
        context = info.context or {}
        self._base_dir = Path(context.get("base_dir") or Path.cwd())
        self._path = context.get("path")
        for host in self.hosts:  # frozen, but not yet seen by anyone: fill in place
            override = host.ssh_override.model_dump(exclude_none=True) if host.ssh_override else {}
            host._ssh = self.ssh.model_copy(update=override)
        problems = list(_cross_section_problems(self))
        if problems:
            raise TopologyProblems(problems)
        return self

    @property
    def base_dir(self) -> Path:
        """The folder relative paths were resolved against (the topology file's)."""
        return self._base_dir

    @property
    def path(self) -> Path | None:
        """The topology file this was loaded from, if any."""
        return self._path

    def host(self, name: str) -> Host:
        """The host called `name`; a `UsageError` (exit 2) naming the known hosts if none."""
        for host in self.hosts:
            if host.name == name:
                return host
        raise UsageError(
            f"no host named {name!r} in the topology",
            hint=f"hosts: {', '.join(h.name for h in self.hosts)}",
        )

    def hosts_with_role(self, role: Role) -> list[Host]:
        """The hosts that have `role`, in file order."""
        return [host for host in self.hosts if role in host.roles]

    @property
    def lb_host(self) -> Host:
        """The one host with the `lb` role."""
        return self.hosts_with_role("lb")[0]

    @property
    def redis_host(self) -> Host:
        """The one host with the `redis` role."""
        return self.hosts_with_role("redis")[0]

    @property
    def vpn_host(self) -> Host | None:
        """The host running the OpenVPN client, or None when `database.via` is direct."""
        if self.database.via != "vpn":
            return None
        return self.hosts_with_role("vpn")[0]

    @property
    def app_hosts(self) -> list[Host]:
        """The hosts with the `app` role, in file order."""
        return self.hosts_with_role("app")

    @property
    def migrations_dir(self) -> Path | None:
        """`database.migrations`, else `app/migrations` in the build context, else None."""
        if self.database.migrations is not None:
            return self.database.migrations
        if self.app.build is not None:
            return self.app.build.context / "app" / "migrations"
        return None

    def redacted_dict(self) -> dict[str, Any]:
        """A JSON-safe view for `--json` output: effective SSH per host, secrets as "***"."""
        data = self.model_dump(mode="json", by_alias=True)
        data["hosts"] = [
            {
                "name": host.name,
                "address": host.address,
                "roles": list(host.roles),
                "ssh": host.ssh.model_dump(mode="json"),
            }
            for host in self.hosts
        ]
        migrations = self.migrations_dir
        data["database"]["migrations"] = str(migrations) if migrations else None
        data["base_dir"] = str(self.base_dir)
        return data


_ROLE_RULES: dict[Role, tuple[int, int | None, str]] = {
    "lb": (1, 1, "exactly one lb host is supported (one load balancer)"),
    "redis": (1, 1, "exactly one redis host is needed"),
    "vpn": (1, 1, "exactly one vpn host is needed when database.via is vpn"),
    "app": (1, None, "at least one app host is needed"),
}


def _cross_section_problems(topo: Topology) -> Iterator[Problem]:
    """Rules that span sections: duplicates, role counts, vpn section, known_hosts, ports."""
    first_by_name: dict[str, int] = {}
    first_by_endpoint: dict[tuple[str, int], int] = {}
    for i, host in enumerate(topo.hosts):
        if host.name in first_by_name:
            yield Problem(f"hosts[{i}].name", f"duplicate host name {host.name!r} "
                          f"(also hosts[{first_by_name[host.name]}])")
        first_by_name.setdefault(host.name, i)
        endpoint = (host.address.lower().rstrip("."), host.ssh.port)
        if endpoint in first_by_endpoint:
            j = first_by_endpoint[endpoint]
            yield Problem(f"hosts[{i}].address", f"{host.address} with SSH port {host.ssh.port} "
                          f"is already hosts[{j}] ({topo.hosts[j].name}); each host needs its "
                          "own address or SSH port")
        first_by_endpoint.setdefault(endpoint, i)

    for role, (low, high, rule) in _ROLE_RULES.items():
        if role == "vpn" and topo.database.via != "vpn":
            continue
        holders = [i for i, host in enumerate(topo.hosts) if role in host.roles]
        if len(holders) < low:
            yield Problem("hosts", f"no host has the role {role!r}; {rule}")
        for i in holders[high or len(holders):]:
            yield Problem(f"hosts[{i}].roles", f"role {role!r} is already on hosts[{holders[0]}] "
                          f"({topo.hosts[holders[0]].name}); {rule}")

    if topo.database.via == "vpn" and topo.vpn is None:
        yield Problem("vpn", "missing; a vpn section (client_config, …) is required when "
                      "database.via is vpn")

    reported: set[Path] = set()
    for i, host in enumerate(topo.hosts):
        settings = host.ssh
        if settings.host_key_policy != "strict" or settings.known_hosts in reported:
            continue
        if not settings.known_hosts.is_file():
            reported.add(settings.known_hosts)
            own = host.ssh_override is not None and host.ssh_override.known_hosts is not None
            yield Problem(
                f"hosts[{i}].ssh.known_hosts" if own else "ssh.known_hosts",
                f"file not found: {settings.known_hosts}; host_key_policy strict (host "
                f"{host.name}) needs every host key in it already (add them after checking "
                "their fingerprints, or use host_key_policy: accept-new)",
            )

    if topo.lb.port == topo.redis.port and any({"lb", "redis"} <= set(h.roles) for h in topo.hosts):
        yield Problem("redis.port", f"port {topo.redis.port} is also lb.port and both are "
                      "published on the same host; give them different ports")

