"""The per-host Docker engine: container specs as `docker` argv, and containers as facts.

`create_argv(spec, state_dir)` and `spec_files(spec, state_dir)` are pure: the argv of
`docker create` and the config files to upload first (0644) under the host's state
folder `<home>/.surveyctl/<cluster>/<container>/`. A config file with a `reload` command
lives in a mounted folder, so a rename-replaced file is seen inside without recreating
the container.

Secrets never touch the host's disk outside Docker's root-only storage, nor any argv,
nor `docker inspect`: after `docker create`, `secrets_tar` (an in-memory tar, members
owned by the container's user, mode 0400) is streamed into `docker cp - NAME:/` and
only then is the container started. Measured on Docker 20.10.24: without `-a`,
`docker cp` keeps the tar's uid/gid/mode and creates missing parents 0755 root; with
`-a` it looks the container's user up in the *host's* passwd (`getent`), which fails
for a numeric `USER 10001:10001` and maps names to the host's uids: never use `-a`.
`container_owner` resolves the uid/gid (numeric, or a name read from the container's
own /etc/passwd). `list_containers` reads a host's containers of one
cluster as `Observed` facts (one round trip over the host's SSH connection);
`config_hashes` reads the live config files' hashes for the plan's "reload" steps.
"""

from __future__ import annotations

import io
import json
import posixpath
import shlex
import tarfile
from dataclasses import dataclass
from typing import TYPE_CHECKING

from survey_ctl.plan import Observed, observed_from_inspect
from survey_ctl.specs.container import LABEL_CLUSTER, ConfigFile, ContainerSpec

if TYPE_CHECKING:
    from survey_ctl.remote.ssh import HostConnection


@dataclass(frozen=True)
class SpecFile:
    """A file to write on the host before the container is created."""

    path: str
    data: bytes
    mode: int

    def __repr__(self) -> str:  # the data may be a secret
        return f"SpecFile(path={self.path!r}, mode={self.mode:#o})"


def state_dir(home: str, cluster: str) -> str:
    """The host folder holding a cluster's uploaded files (under the SSH user's home)."""
    return posixpath.join(home, ".surveyctl", cluster)


def config_path(state: str, spec: ContainerSpec, config: ConfigFile) -> str:
    """Where a config file of `spec` is written on the host (in its mounted folder)."""
    return posixpath.join(state, spec.name, "config", posixpath.basename(config.target))


def _seconds(value: float) -> str:
    return f"{value:g}s"


def _config_folder(spec: ContainerSpec) -> str | None:
    folders = {posixpath.dirname(c.target) for c in spec.config_files.values()}
    if len(folders) > 1:
        raise ValueError(f"{spec.name}: config files must share one folder, got {folders}")
    return folders.pop() if folders else None


def spec_files(spec: ContainerSpec, state: str) -> list[SpecFile]:
    """The config files (0644) `create_argv` mounts; secrets go in by `secrets_tar`."""
    return [SpecFile(config_path(state, spec, config), config.content.encode(), 0o644)
            for _, config in sorted(spec.config_files.items())]


def secrets_tar(spec: ContainerSpec, uid: int, gid: int) -> bytes:
    """A tar of `spec`'s secret files, paths relative to `/`, for `docker cp - NAME:/`.

    Members are owned by `uid:gid` with each secret's mode; mtime 0, so equal input
    gives equal bytes. Missing parent folders are made by Docker (0755, root).
    """
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for _, secret in sorted(spec.secret_files.items()):
            data = secret.data
            member = tarfile.TarInfo(secret.target.lstrip("/"))
            member.size, member.mode, member.uid, member.gid = len(data), secret.mode, uid, gid
            tar.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


def parse_user(user: str) -> tuple[str, str | None]:
    """`USER` / `--user` split into (user, group or None); "" means root."""
    name, _, group = (user or "0").partition(":")
    return name or "0", group or None


def lookup_id(database: str, name: str) -> tuple[int, int] | None:
    """(id, primary gid) of `name` in /etc/passwd-style text (gid = id for /etc/group)."""
    for line in database.splitlines():
        fields = line.split(":")
        if len(fields) >= 3 and fields[0] == name and fields[2].isdigit():
            gid = fields[3] if len(fields) > 3 and fields[3].isdigit() else fields[2]
            return int(fields[2]), int(gid)
    return None


def create_argv(spec: ContainerSpec, state: str) -> list[str]:
    """`docker create …` for `spec` (run it, copy `secrets_tar` in, then `docker start`)."""
    argv = ["docker", "create", "--name", spec.name]
    for key, value in sorted(spec.labels.items()):
        argv += ["--label", f"{key}={value}"]
    argv += ["--restart", spec.restart]
    if spec.network_mode:
        argv += ["--network", spec.network_mode]
    elif spec.network:
        argv += ["--network", spec.network]
        for alias in spec.network_aliases:
            argv += ["--network-alias", alias]
    if spec.user:
        argv += ["--user", spec.user]
    command = list(spec.command)
    if spec.entrypoint is not None:
        argv += ["--entrypoint", spec.entrypoint[0] if spec.entrypoint else ""]
        command = [*spec.entrypoint[1:], *command]
    for key, value in sorted(spec.env.items()):
        argv += ["--env", f"{key}={value}"]
    for port in spec.ports:
        argv += ["--publish",
                 f"{port.host_ip}:{port.host_port}:{port.container_port}/{port.protocol}"]
    for volume in spec.volumes:
        option = f"type={volume.kind},source={volume.source},target={volume.target}"
        argv += ["--mount", option + (",readonly" if volume.read_only else "")]
    folder = _config_folder(spec)
    if folder:
        source = posixpath.join(state, spec.name, "config")
        argv += ["--mount", f"type=bind,source={source},target={folder},readonly"]
    for capability in spec.cap_add:
        argv += ["--cap-add", capability]
    for device in spec.devices:
        argv += ["--device", device]
    check = spec.healthcheck
    if check is not None:
        kind, *test = check.test
        shell = test[0] if kind == "CMD-SHELL" else shlex.join(test)
        argv += ["--health-cmd", shell, "--health-interval", _seconds(check.interval),
                 "--health-timeout", _seconds(check.timeout),
                 "--health-retries", str(check.retries)]
        if check.start_period:
            argv += ["--health-start-period", _seconds(check.start_period)]
    return [*argv, spec.image, *command]


_LIST_SCRIPT = (
    'set -e; ids=$(docker ps --all --quiet --no-trunc --filter "label=$1=$2"); '
    'if [ -z "$ids" ]; then echo "[]"; else docker inspect $ids; fi'
)


def list_containers(connection: HostConnection, cluster: str) -> list[Observed]:
    """The host's containers labelled with `cluster`, running or not (one round trip)."""
    result = connection.run(["sh", "-c", _LIST_SCRIPT, "sh", LABEL_CLUSTER, cluster])
    connection.checked_docker(result, "docker ps/inspect")
    return [observed_from_inspect(doc) for doc in json.loads(result.stdout)]


def config_hashes(connection: HostConnection, specs: list[ContainerSpec],
                  state: str) -> dict[str, dict[str, str]]:
    """sha256 of each live config file of `specs` as it is on the host (one round trip).

    Keyed by container, then config name; files not on the host are left out.
    """
    wanted = {
        config_path(state, spec, config): (spec.name, name)
        for spec in specs for name, config in sorted(spec.config_files.items()) if config.reload
    }
    found: dict[str, dict[str, str]] = {spec.name: {} for spec in specs}
    if not wanted:
        return found
    result = connection.run(["sh", "-c", 'sha256sum -- "$@" 2>/dev/null; exit 0', "sh", *wanted])
    for line in result.text.splitlines():
        digest, _, path = line.partition("  ")
        if path in wanted:
            container, name = wanted[path]
            found[container][name] = digest
    return found


def _read_from_container(connection: HostConnection, container: str, path: str) -> str | None:
    """A small text file of a (created) container, via `docker cp NAME:PATH -`; None if none."""
    result = connection.run(["docker", "cp", f"{container}:{path}", "-"])
    if not result.ok:
        return None
    with tarfile.open(fileobj=io.BytesIO(result.stdout)) as tar:
        member = tar.next()
        handle = tar.extractfile(member) if member is not None else None
        return handle.read().decode("utf-8", "replace") if handle else None


def container_owner(connection: HostConnection, container: str, user: str) -> tuple[int, int]:
    """uid/gid the container runs as (`user` from `--user` or the image's USER).

    Numbers are taken as they are; names are looked up in the container's own
    /etc/passwd and /etc/group (not the host's). An unknown name is a `HostError`.
    """
    from survey_ctl.errors import HostError

    name, group = parse_user(user)
    files: dict[str, str | None] = {}

    def resolve(value: str, database: str) -> tuple[int, int]:
        if value.isdigit():
            return int(value), 0
        if database not in files:
            files[database] = _read_from_container(connection, container, database)
        found = lookup_id(files[database] or "", value)
        if found is None:
            raise HostError(connection.name, f"{container}: user or group {value!r} is not in "
                            f"the image's {database}",
                            hint="set USER in the image to a user it defines, or a uid:gid")
        return found

    uid, gid = resolve(name, "/etc/passwd")
    if group is not None:
        gid = resolve(group, "/etc/group")[0]
    return uid, gid


def upload_config_files(connection: HostConnection, spec: ContainerSpec, state: str,
                        suffix: str = "") -> list[str]:
    """Write `spec`'s config files (each path + `suffix`) in its mounted folder; their paths.

    The folder is made 0755 (config is not secret), so a non-root container user reads it.
    """
    files = spec_files(spec, state)
    if files:
        folder = posixpath.dirname(files[0].path)
        connection.check(["mkdir", "-p", "-m", "0755", folder])
        connection.check(["chmod", "0755", folder])
    for file in files:
        connection.put_file(file.path + suffix, file.data, file.mode)
    return [file.path + suffix for file in files]


def copy_secrets(connection: HostConnection, spec: ContainerSpec, user: str) -> None:
    """Copy `spec`'s secrets into its created container, owned by its user (no-op if none)."""
    if not spec.secret_files:
        return
    uid, gid = container_owner(connection, spec.name, user)
    connection.docker(["cp", "-", f"{spec.name}:/"], stdin=secrets_tar(spec, uid, gid))
