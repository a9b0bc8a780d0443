"""`ContainerSpec`: what one container should be, independent of the engine that runs it.

A spec is a frozen value made by the builders in `survey_ctl.specs.cluster` from the
topology. Secret contents ride along as `SecretStr` (never printed, never in argv);
the executor copies them into the container at run time. `spec_hash` is a stable sha256 over the
canonical JSON of the desired state; it goes into the `surveyctl.spec-hash` label so a
later plan can see drift. Secret contents enter it only as a hash of their hash, so a
rotated secret redeploys the container without the label revealing the secret.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

LABEL_CLUSTER = "surveyctl.cluster"
LABEL_ROLE = "surveyctl.role"
LABEL_HASH = "surveyctl.spec-hash"


@dataclass(frozen=True)
class PortBinding:
    """A container port published on the host: `host_ip:host_port -> container_port`."""

    host_ip: str
    host_port: int
    container_port: int
    protocol: str = "tcp"


@dataclass(frozen=True)
class Mount:
    """A named volume (`kind="volume"`) or host folder (`kind="bind"`) in the container."""

    source: str
    target: str
    kind: str = "volume"
    read_only: bool = False


@dataclass(frozen=True)
class Healthcheck:
    """Docker's health check: `test` as in the Engine API (["CMD", …] or ["CMD-SHELL", …])."""

    test: tuple[str, ...]
    interval: float
    timeout: float
    retries: int
    start_period: float = 0.0


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class SecretFile:
    """A secret the container reads from a file at `target`; `value` is never shown.

    The executor copies it into the created container before its first start, owned by
    the container's user with `mode` (see `survey_ctl.remote.docker.secrets_tar`).
    """

    target: str
    value: SecretStr = field(repr=False)
    mode: int = 0o400

    @property
    def data(self) -> bytes:
        """The bytes to write; for the executor only."""
        return self.value.get_secret_value().encode()

    @property
    def fingerprint(self) -> str:
        """sha256 of the sha256 of the content: changes with it, reveals nothing usable."""
        return _digest(_digest(self.data).encode())


@dataclass(frozen=True)
class ConfigFile:
    """A non-secret file the container reads at `target`.

    With `reload` (a command run inside the container after the file changed, preceded
    by `check` when given), a new content is applied in place, not by replacing the
    container: such a file is left out of `spec_hash` and the executor compares the
    content itself. Mount its folder (not the file) so an atomic rename is seen.
    """

    target: str
    content: str
    reload: tuple[str, ...] = ()
    check: tuple[str, ...] = ()

    @property
    def fingerprint(self) -> str:
        """sha256 of the content."""
        return _digest(self.content.encode())


@dataclass(frozen=True)
class ContainerSpec:
    """The desired state of one container (names, image, wiring; secrets by reference)."""

    name: str
    image: str
    command: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    secret_files: Mapping[str, SecretFile] = field(default_factory=dict)
    config_files: Mapping[str, ConfigFile] = field(default_factory=dict)
    ports: tuple[PortBinding, ...] = ()
    volumes: tuple[Mount, ...] = ()
    network: str | None = None
    network_aliases: tuple[str, ...] = ()
    restart: str = "unless-stopped"
    healthcheck: Healthcheck | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    cap_add: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()
    network_mode: str | None = None
    user: str | None = None

    @property
    def role(self) -> str:
        """The `surveyctl.role` label."""
        return self.labels.get(LABEL_ROLE, "")

    @property
    def hash_label(self) -> str | None:
        """The `surveyctl.spec-hash` label, once `with_hash` set it."""
        return self.labels.get(LABEL_HASH)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def describe(spec: ContainerSpec) -> dict[str, Any]:
    """A JSON-safe, printable view: secrets show only their target path, configs their hash."""
    data = _plain(dataclasses.replace(spec, secret_files={}, config_files={}))
    data["secret_files"] = {name: s.target for name, s in sorted(spec.secret_files.items())}
    data["config_files"] = {
        name: {"target": c.target, "sha256": c.fingerprint}
        for name, c in sorted(spec.config_files.items())
    }
    return data


def canonical_json(spec: ContainerSpec) -> str:
    """The canonical JSON that `spec_hash` digests (no secret, no hash label, no live config)."""
    data = describe(spec)
    data["labels"] = {k: v for k, v in spec.labels.items() if k != LABEL_HASH}
    data["secret_files"] = {
        name: {"target": s.target, "mode": s.mode, "content": s.fingerprint}
        for name, s in sorted(spec.secret_files.items())
    }
    data["config_files"] = {
        name: {"target": c.target, "reload": list(c.reload), "check": list(c.check),
               **({} if c.reload else {"content": c.fingerprint})}
        for name, c in sorted(spec.config_files.items())
    }
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def spec_hash(spec: ContainerSpec) -> str:
    """Stable sha256 (hex) of the desired state; equal specs hash equal across runs."""
    return _digest(canonical_json(spec).encode())


def with_hash(spec: ContainerSpec) -> ContainerSpec:
    """The spec with its `surveyctl.spec-hash` label set."""
    return dataclasses.replace(spec, labels={**spec.labels, LABEL_HASH: spec_hash(spec)})
