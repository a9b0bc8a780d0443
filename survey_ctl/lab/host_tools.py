"""The machine `lab` runs on: root and Linux, the Debian packages it needs, dockerd."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from survey_ctl.errors import LabError
from survey_ctl.lab.spec import DOCKERD_LOG

if TYPE_CHECKING:
    import docker

    from survey_ctl.lab.progress import StepHandle

# program on PATH -> the Debian package that provides it
REQUIRED_PROGRAMS = {
    "dockerd": "docker.io",
    "docker-init": "docker.io",
    "debootstrap": "debootstrap",
    "ssh": "openssh-client",
    "tar": "tar",
}


def check_platform() -> None:
    """Fail unless this is Linux and we are root."""
    if platform.system() != "Linux":
        raise LabError(
            f"the lab needs Linux, this is {platform.system()}",
            "run `surveyctl lab` on a Linux machine (Debian 12 is tested)",
        )
    if os.geteuid() != 0:
        raise LabError(
            "the lab needs root (it runs dockerd, debootstrap and apt-get)",
            "run it again as root, e.g. `sudo surveyctl lab up`",
        )


def missing_packages() -> list[str]:
    """Debian packages whose programs are not on PATH, in a stable order."""
    return sorted({pkg for prog, pkg in REQUIRED_PROGRAMS.items() if not shutil.which(prog)})


def ensure_packages(step: StepHandle) -> None:
    """Install with apt-get whatever the lab needs and the machine lacks."""
    missing = missing_packages()
    if not missing:
        step.note("all present")
        return
    if not shutil.which("apt-get"):
        raise LabError(
            f"missing programs from the packages {', '.join(missing)}, and no apt-get",
            "install them with your system's package manager, then run `lab up` again",
        )
    step.note(f"apt-get install {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", *missing]
    if _run_quiet(install, env) != 0:
        _run_quiet(["apt-get", "update"], env)
        if _run_quiet(install, env) != 0:
            raise LabError(
                f"apt-get could not install {', '.join(missing)}",
                f"run `apt-get install {' '.join(missing)}` to see why",
            )


def _run_quiet(argv: list[str], env: dict[str, str]) -> int:
    return subprocess.run(argv, env=env, capture_output=True, check=False).returncode


@contextmanager
def docker_errors(doing: str) -> Iterator[None]:
    """Turn the Docker SDK's errors into a LabError saying what we were doing."""
    import docker

    try:
        yield
    except docker.errors.DockerException as exc:
        explanation = getattr(exc, "explanation", None) or str(exc)
        raise LabError(
            f"Docker Engine error while {doing}: {explanation}",
            f"see {DOCKERD_LOG} or `docker ps -a`; `surveyctl lab up` repairs the lab",
        ) from None


def docker_client(timeout: int = 600) -> docker.DockerClient:
    """A client of this machine's Docker Engine (DOCKER_HOST or the default socket)."""
    import docker

    return docker.from_env(version="auto", timeout=timeout)


def engine_answers() -> bool:
    """True when this machine's Docker Engine answers a ping."""
    import docker

    try:
        client = docker_client(timeout=5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except docker.errors.DockerException:
        return False


def ensure_dockerd(step: StepHandle) -> None:
    """Start this machine's Docker Engine unless one answers; it outlives surveyctl."""
    if engine_answers():
        step.note("running")
        return
    if Path("/run/systemd/system").is_dir() and shutil.which("systemctl"):
        step.note("systemctl start docker")
        subprocess.run(["systemctl", "start", "docker"], capture_output=True, check=False)
    else:
        step.note(f"starting dockerd, log in {DOCKERD_LOG}")
        with open(DOCKERD_LOG, "ab") as log:
            subprocess.Popen(
                ["dockerd"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                close_fds=True,
            )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if engine_answers():
            return
        time.sleep(0.5)
    raise LabError(
        "the Docker Engine did not start within 60 s",
        f"read {DOCKERD_LOG} (or `journalctl -u docker`) for the reason",
    )


def repo_root() -> Path:
    """The source checkout holding `stacks/` (the lab builds its images from it)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "stacks" / "lab").is_dir():
        raise LabError(
            f"no stacks/lab folder beside the surveyctl package (looked in {root})",
            "run surveyctl from a source checkout (`pip install -e .`)",
        )
    return root
