"""The app image's wheelhouse, downloaded on this machine for the image's own Python.

`docker build` reaches no package index here, so the app's Dockerfile installs from
`stacks/app/wheels/` with `pip install --no-index --find-links`. pip evaluates
environment markers against the Python that runs it, so the download runs with the
marker environment of the image's Python (e.g. 3.11.2, where redis needs async-timeout),
and the result is checked inside the image, offline.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from survey_ctl.errors import LabError
from survey_ctl.lab.spec import PYTHON_IMAGE

if TYPE_CHECKING:
    import docker

    from survey_ctl.lab.progress import StepHandle

KEY_FILE = ".surveyctl-lab-key"
GLIBC_MINORS = range(17, 37)  # Debian 12 has glibc 2.36: manylinux_2_17 .. 2_36
MARKER_ENV_SCRIPT = (
    "import json, os, platform, sys\n"
    "v = sys.version_info\n"
    "print(json.dumps({'implementation_name': sys.implementation.name,"
    " 'implementation_version': platform.python_version(),"
    " 'os_name': os.name, 'platform_machine': platform.machine(),"
    " 'platform_python_implementation': platform.python_implementation(),"
    " 'platform_system': platform.system(), 'sys_platform': sys.platform,"
    " 'python_full_version': platform.python_version(),"
    " 'python_version': f'{v.major}.{v.minor}'}))\n"
)
# Runs pip with the image's marker environment instead of this interpreter's.
PIP_WITH_ENV = (
    "import json, sys\n"
    "from pip._vendor.packaging import markers\n"
    "target = json.loads(sys.argv[1])\n"
    "base = markers.default_environment\n"
    "markers.default_environment = lambda: {**base(), **target}\n"
    "from pip._internal.cli.main import main\n"
    "sys.exit(main(sys.argv[2:]))\n"
)


def _run_in_image(client: docker.DockerClient, argv: list[str], volumes=None) -> tuple[int, str]:
    container = client.containers.create(
        PYTHON_IMAGE.tag, argv, network_mode="none", volumes=volumes or {}
    )
    try:
        container.start()
        code = container.wait(timeout=300)["StatusCode"]
        return code, container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)


def target_environment(client: docker.DockerClient) -> dict[str, str]:
    """The marker environment of the Python inside the lab's Python base image."""
    code, output = _run_in_image(client, ["python3", "-c", MARKER_ENV_SCRIPT])
    if code != 0:
        raise LabError(f"could not run python3 in {PYTHON_IMAGE.tag}: {output[-300:]}")
    return json.loads(output.strip().splitlines()[-1])


def pip_download_argv(requirements: Path, dest: Path, env: dict[str, str]) -> list[str]:
    """The pip download command for the image's Python (cp311, manylinux x86_64)."""
    major, minor = env["python_version"].split(".")
    argv = [sys.executable, "-c", PIP_WITH_ENV, json.dumps(env), "download", "--quiet"]
    argv += ["--dest", str(dest), "--only-binary=:all:", "--implementation", "cp"]
    argv += ["--python-version", env["python_full_version"], "--abi", f"cp{major}{minor}"]
    argv += ["--abi", "abi3", "--abi", "none"]
    argv += ["--platform", "manylinux2014_x86_64"]
    for minor_glibc in GLIBC_MINORS:
        argv += ["--platform", f"manylinux_2_{minor_glibc}_x86_64"]
    return [*argv, "-r", str(requirements)]


def ensure_wheelhouse(client: docker.DockerClient, repo: Path, step: StepHandle) -> str:
    """Fill stacks/app/wheels for app/requirements.txt unless it is up to date."""
    requirements = repo / "app" / "requirements.txt"
    wheels = repo / "stacks" / "app" / "wheels"
    if not requirements.is_file():
        step.note("skipped: app/requirements.txt does not exist yet")
        return "skipped"
    image_id = client.images.get(PYTHON_IMAGE.tag).id
    key = hashlib.sha256(image_id.encode() + requirements.read_bytes()).hexdigest()[:16]
    if (wheels / KEY_FILE).is_file() and (wheels / KEY_FILE).read_text().strip() == key:
        step.note("cached")
        return "cached"
    env = target_environment(client)
    step.note(f"pip download for Python {env['python_full_version']}")
    staging = Path(tempfile.mkdtemp(prefix="surveyctl-wheels-"))
    try:
        done = subprocess.run(
            pip_download_argv(requirements, staging, env), capture_output=True, text=True
        )
        if done.returncode != 0:
            raise LabError(
                "pip could not download the app's wheels: " + done.stderr.strip()[-400:],
                "check app/requirements.txt (every package needs a cp311 manylinux wheel)",
            )
        step.note("checking the install inside the image, offline")
        _check_offline_install(client, requirements, staging)
        shutil.rmtree(wheels, ignore_errors=True)
        shutil.copytree(staging, wheels)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    (wheels / KEY_FILE).write_text(key + "\n")
    count = len(list(wheels.glob("*.whl")))
    step.note(f"{count} wheels")
    return "downloaded"


def _check_offline_install(client: docker.DockerClient, requirements: Path, wheels: Path) -> None:
    script = (
        "python3 -m venv /tmp/venv && /tmp/venv/bin/pip install --quiet --no-index "
        "--find-links /wheels --dry-run -r /req/requirements.txt"
    )
    volumes = {
        str(wheels): {"bind": "/wheels", "mode": "ro"},
        str(requirements.parent): {"bind": "/req", "mode": "ro"},
    }
    code, output = _run_in_image(client, ["sh", "-c", script], volumes)
    if code != 0:
        raise LabError(
            "the wheelhouse does not install offline in the app's Python: " + output[-400:],
            "a requirement may lack a wheel for cp311 manylinux x86_64",
        )
