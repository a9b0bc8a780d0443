"""Images without a registry: build the app image here once, ship images over SSH.

`build_app_image` runs `docker build` on the operator's engine (docker CLI) when
`app.build` is set. `ensure_images` makes one host hold every image its containers
need: the built image is shipped when the host's image ID differs; a named image
(nginx, redis, openvpn, or the app without `build`) missing on the host is pulled
there, or, if that fails and the operator's engine has it, shipped. Shipping streams
`docker save` (run here, once per host, all of the host's images in one stream) into
`docker load` on the host, counting bytes for a progress bar: through the OpenSSH
client when this machine has one (with the topology's key and known_hosts, strict:
`remote.ssh.openssh_argv`), which moves bulk data about twice as fast as paramiko and
runs each host's stream in its own process; through the paramiko connection otherwise.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from survey_ctl import console
from survey_ctl.errors import HostError, OperationError
from survey_ctl.remote.ssh import Result, openssh_argv

if TYPE_CHECKING:
    from survey_ctl.config import Topology
    from survey_ctl.remote.ssh import HostConnection

PULL_TIMEOUT = 120.0
LOAD_TIMEOUT = 1800.0
CHUNK = 1 << 20
SSH_FAILED = 255  # the OpenSSH client's own failure (connect, auth, host key)
_INSPECT_SCRIPT = (
    'for image in "$@"; do '
    "if found=$(docker image inspect --format '{{.Id}} {{json .Config.User}}' \"$image\"); "
    'then echo "$found"; else echo "-"; fi; done'
)


@dataclass(frozen=True)
class ImageFact:
    """An image as a host (or the operator's engine) holds it: its ID and USER."""

    id: str
    user: str = ""


@dataclass
class Transfer:
    """What a host lacks: images to ship from here, images to pull there, and why."""

    ship: list[str] = field(default_factory=list)
    pull: list[str] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)

    def describe(self) -> list[str]:
        """One line per image to move, for `plan` and `up`."""
        return ([f"ship image {name} ({self.reasons[name]})" for name in self.ship]
                + [f"pull image {name} ({self.reasons[name]})" for name in self.pull])


# ---------------------------------------------------------------- the operator's engine


def _docker_here() -> str:
    docker = shutil.which("docker")
    if docker is None:
        raise OperationError("no `docker` command on this machine",
                             hint="install the Docker CLI and Engine here (apt-get install "
                             "docker.io): it builds and ships the images")
    return docker


def local_image(name: str) -> ImageFact | None:
    """`name` in the operator's engine, or None (also when there is no engine)."""
    docker = shutil.which("docker")
    if docker is None:
        return None
    done = subprocess.run([docker, "image", "inspect", "--format", "{{.Id}}", name],
                          capture_output=True, text=True, timeout=60)
    return ImageFact(done.stdout.strip()) if done.returncode == 0 else None


def build_argv(topo: Topology) -> list[str]:
    """`docker build` of the app image from `app.build` (pure)."""
    build = topo.app.build
    assert build is not None
    argv = ["docker", "build", "--tag", topo.app.image,
            "--file", str(build.dockerfile)]
    for key, value in sorted(build.args.items()):
        argv += ["--build-arg", f"{key}={value}"]
    return [*argv, str(build.context)]


def build_app_image(topo: Topology, verbose: bool = False) -> str:
    """Build `app.image` here from `app.build`; its image ID. Output shown on failure
    (or always with `verbose`)."""
    argv = build_argv(topo)
    argv[0] = _docker_here()
    console.info(f"building {topo.app.image} from {topo.app.build.context}")  # type: ignore[union-attr]
    # Progress, not data: with --verbose the build's output goes to stderr, not stdout.
    where = {"stdout": sys.stderr, "stderr": sys.stderr} if verbose else {
        "capture_output": True}
    done = subprocess.run(argv, text=True, env={"DOCKER_BUILDKIT": "0", **os.environ},
                          check=False, **where)
    if done.returncode != 0:
        if not verbose:
            console.err.out((done.stdout or "") + (done.stderr or ""), highlight=False)
        raise OperationError(f"building {topo.app.image} failed (exit {done.returncode})",
                             hint="the build output is above; fix the Dockerfile or build "
                             "args and run again")
    fact = local_image(topo.app.image)
    if fact is None:
        raise OperationError(f"the build did not tag {topo.app.image}")
    return fact.id


# ---------------------------------------------------------------- hosts


def remote_images(conn: HostConnection, names: list[str]) -> dict[str, ImageFact | None]:
    """Each image's ID and USER on the host, or None (one round trip)."""
    if not names:
        return {}
    result = conn.run(["sh", "-c", _INSPECT_SCRIPT, "sh", *names])
    conn.checked_docker(result, "docker image inspect")
    facts: dict[str, ImageFact | None] = {}
    lines = result.text.splitlines()
    for name, line in zip(names, lines + ["-"] * (len(names) - len(lines)), strict=True):
        image_id, _, user = line.partition(" ")
        facts[name] = None if image_id in ("", "-") else ImageFact(image_id, _json_str(user))
    return facts


def _json_str(raw: str) -> str:
    import json

    try:
        value = json.loads(raw) if raw else ""
    except ValueError:
        return ""
    return value if isinstance(value, str) else ""


def transfer_for(on_host: dict[str, ImageFact | None], built: dict[str, str]) -> Transfer:
    """What to ship or pull (pure): built images whose ID differs, named ones missing.

    `built` maps the images built here to their ID ("" when not built yet).
    """
    transfer = Transfer()
    for name, fact in on_host.items():
        if name in built:
            if fact is None or not built[name] or fact.id != built[name]:
                transfer.ship.append(name)
                transfer.reasons[name] = (
                    "not built here yet" if not built[name] else
                    "missing" if fact is None else "differs from the build")
        elif fact is None:
            transfer.pull.append(name)
            transfer.reasons[name] = "missing"
    return transfer


def _pull(conn: HostConnection, name: str) -> str | None:
    """Pull `name` on the host; None if it worked, else why not."""
    try:
        result = conn.run(["docker", "pull", "--quiet", name], timeout=PULL_TIMEOUT)
    except HostError as exc:
        return exc.message
    if result.ok:
        return None
    conn.checked_docker(result, "docker pull", check=False)
    return result.error_text or f"exit {result.rc}"


def _save_stream(names: list[str], advance: Callable[[int], None],
                 failure: list[str]) -> Generator[bytes, None, None]:
    """`docker save NAMES` here, chunk by chunk; `advance(bytes)` after each chunk."""
    proc = subprocess.Popen([_docker_here(), "save", *names], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None
    try:
        while chunk := proc.stdout.read(CHUNK):
            advance(len(chunk))
            yield chunk
    finally:
        proc.stdout.close()
        error = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
        if proc.wait() != 0:
            failure.append(error.strip() or f"docker save exited {proc.returncode}")


def _size(names: list[str]) -> int:
    done = subprocess.run([_docker_here(), "image", "inspect", "--format", "{{.Size}}", *names],
                          capture_output=True, text=True, timeout=60)
    return sum(int(n) for n in done.stdout.split() if n.isdigit())


class ShipProgress:
    """One byte-counting bar per host (rich on a terminal, plain lines otherwise)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._progress = None

    def __enter__(self) -> ShipProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def task(self, host: str, names: list[str], total: int) -> Callable[[int], None]:
        """A callback advancing `host`'s bar."""
        label = f"{host}: ship {', '.join(names)}"
        if not console.is_interactive():
            console.info(f"{label} ({total / 1e6:.0f} MB)")
            return lambda _n: None
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TransferSpeedColumn,
        )

        with self._lock:
            if self._progress is None:
                self._progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                          DownloadColumn(), TransferSpeedColumn(),
                                          console=console.err, transient=False)
                self._progress.start()
            progress = self._progress
            task = progress.add_task(label, total=total or None)
        return lambda n: progress.advance(task, n)


def ship(conn: HostConnection, names: list[str], progress: ShipProgress) -> None:
    """Stream `docker save NAMES` from here into `docker load` on the host: through the
    OpenSSH client when there is one (same key, same known_hosts, strict), else, or if
    it cannot connect, through the paramiko connection."""
    load = ["docker", "load", "--quiet"]
    size = _size(names)
    failure: list[str] = []
    result = None
    if shutil.which("ssh"):
        result = _through_openssh(openssh_argv(conn.host, load),
                                  _save_stream(names, progress.task(conn.name, names, size),
                                               failure))
        if result is not None and result.rc == SSH_FAILED:
            # (a `docker save` cut short by the ssh client's end is no failure of its own)
            console.info(f"{conn.name}: the ssh client could not ship the image "
                         f"({result.error_text[:200]}); shipping through paramiko")
            result, failure = None, []
    if result is None:
        result = conn.run(load, stdin=_save_stream(names, progress.task(conn.name, names, size),
                                                  failure), timeout=LOAD_TIMEOUT)
    if failure:
        raise HostError(conn.name, f"docker save {' '.join(names)} failed here: {failure[0]}")
    conn.checked_docker(result, "docker load")


def _through_openssh(argv: list[str], chunks: Generator[bytes, None, None]) -> Result | None:
    """Run `argv` (an OpenSSH command) with `chunks` on its stdin; its result."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=out, stderr=err)
        except OSError:
            return None
        assert proc.stdin is not None
        try:
            for chunk in chunks:
                proc.stdin.write(chunk)
        except BrokenPipeError:
            pass  # ssh ended early: its exit status and stderr say why
        finally:
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()
            chunks.close()  # stops `docker save` if ssh ended early
        try:
            rc = proc.wait(timeout=LOAD_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        out.seek(0)
        err.seek(0)
        return Result(rc, out.read(), err.read())


def ensure_images(conn: HostConnection, on_host: dict[str, ImageFact | None],
                  built: dict[str, str], progress: ShipProgress) -> tuple[
                      dict[str, ImageFact | None], list[str]]:
    """Make the host hold every image in `on_host`; its facts afterwards and what was done."""
    transfer = transfer_for(on_host, built)
    to_ship = list(transfer.ship)
    done = []
    with ThreadPoolExecutor(max_workers=4) as workers:  # a dead registry costs one timeout
        failures = dict(zip(transfer.pull, workers.map(lambda n: _pull(conn, n), transfer.pull),
                            strict=True))
    for name, why in failures.items():
        if why is None:
            done.append(f"pulled image {name}")
            continue
        if local_image(name) is None:
            raise HostError(conn.name, f"image {name} is not on the host, the host cannot "
                            f"pull it ({why}) and this machine's Docker has no such image",
                            hint=f"make the image available: `docker pull {name}` (or build "
                            "it) here, then run `surveyctl up` again to ship it")
        to_ship.append(name)
    if to_ship:
        ship(conn, to_ship, progress)
        done += [f"shipped image {name}" for name in to_ship]
    if not done:
        return on_host, []
    after = remote_images(conn, list(on_host))
    for name in to_ship:
        wanted = built.get(name) or (local_image(name) or ImageFact("")).id
        if after.get(name) is None or (wanted and after[name].id != wanted):  # type: ignore[union-attr]
            raise HostError(conn.name, f"image {name} is still not there after docker load")
    return after, done
