"""`lab up`, `down`, `status` and the per-host actions (stop, start, cut, heal, pause)."""

from __future__ import annotations

import functools
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from survey_ctl.errors import LabError, UsageError
from survey_ctl.lab import host_tools, images, machines, pki, topology_writer, wheels
from survey_ctl.lab.files import write_file
from survey_ctl.lab.progress import Steps
from survey_ctl.lab.spec import HOST_NAMES, HOSTS, Host, host
from survey_ctl.lab.ssh_check import check_login
from survey_ctl.lab.topology_writer import ENV_FILE, KEY_FILE, KNOWN_HOSTS, TOPOLOGY, VPN_PROFILE

PKI_DIR = "pki"
HOSTS_DIR = "hosts"
MADE_FILES = (TOPOLOGY, ENV_FILE, KEY_FILE, KEY_FILE + ".pub", KNOWN_HOSTS, VPN_PROFILE)
MADE_DIRS = (PKI_DIR, HOSTS_DIR)


def _docker_errors(doing: str):
    """Decorator: report the Docker SDK's errors as a LabError."""

    def wrap(func):
        @functools.wraps(func)
        def run(*args, **kwargs):
            with host_tools.docker_errors(doing):
                return func(*args, **kwargs)

        return run

    return wrap


def _engine(steps: Steps | None = None):
    """Check the machine, start its Docker Engine if needed, and return a client."""
    host_tools.check_platform()
    if steps is None:
        if not host_tools.engine_answers():
            raise LabError("no Docker Engine answers on this machine", "run `surveyctl lab up`")
        return host_tools.docker_client()
    with steps.step("Debian packages on this machine") as step:
        host_tools.ensure_packages(step)
    with steps.step("Docker Engine on this machine") as step:
        host_tools.ensure_dockerd(step)
    return host_tools.docker_client()


def engine() -> None:
    """Install the lab's host packages and start this machine's Docker Engine."""
    with Steps() as steps:
        _engine(steps).close()


@_docker_errors("building the lab images")
def build_images() -> None:
    """Build the lab's images that are missing or stale (what `up` does first)."""
    with Steps() as steps:
        client = _engine(steps)
        images.ensure_images(client, steps, host_tools.repo_root() / "stacks")
        client.close()


@_docker_errors("building the lab")
def up(lab_dir: Path) -> dict[str, Any]:
    """Build or repair the lab, write its files into `lab_dir`; returns a summary."""
    lab_dir = lab_dir.resolve()
    with Steps() as steps:
        client = _engine(steps)
        made_in = machines.lab_dir_of(client)
        if made_in is not None and made_in != lab_dir:
            raise LabError(
                f"a lab already exists, with its files in {made_in}",
                f"use `--dir {made_in}`, or remove it with `surveyctl lab down` first",
            )
        repo = host_tools.repo_root()
        images.ensure_images(client, steps, repo / "stacks")
        with steps.step("app wheelhouse (stacks/app/wheels)") as step:
            wheels.ensure_wheelhouse(client, repo, step)
        with steps.step(f"keys, certificates and secrets in {lab_dir}"):
            _write_credentials(lab_dir)
        with steps.step("lab network") as step:
            step.note(machines.ensure_network(client, lab_dir))
        with ThreadPoolExecutor(max_workers=len(HOSTS)) as pool:
            for future in [pool.submit(_machine, client, steps, lab_dir, h) for h in HOSTS]:
                future.result()
        with steps.step("topology, known_hosts"):
            keys = {h.name: machines.host_key(client, h) for h in HOSTS}
            write_file(lab_dir / KNOWN_HOSTS, topology_writer.known_hosts_text(keys), 0o644)
            topology_writer.write_topology(lab_dir, repo)
        with ThreadPoolExecutor(max_workers=len(HOSTS)) as pool:
            for future in [pool.submit(_check, steps, lab_dir, h) for h in HOSTS]:
                future.result()
        images.prune_superseded(client)
        elapsed = steps.elapsed
    return {"dir": str(lab_dir), "topology": str(lab_dir / TOPOLOGY), "seconds": elapsed}


def _write_credentials(lab_dir: Path) -> None:
    for folder in (lab_dir, lab_dir / PKI_DIR, lab_dir / HOSTS_DIR):
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o700)
    public_key = pki.ensure_ssh_keypair(lab_dir / KEY_FILE)
    vpn = pki.ensure_pki(lab_dir / PKI_DIR)
    values = topology_writer.ensure_secrets(lab_dir / ENV_FILE)
    cloud = host("cloud")
    write_file(lab_dir / VPN_PROFILE, pki.client_profile(vpn, cloud.address), 0o600)
    for h in HOSTS:
        conf = lab_dir / HOSTS_DIR / h.name
        write_file(conf / "authorized_keys", public_key, 0o644)
        pki.ensure_ssh_keypair(conf / "ssh_host_ed25519_key")
    conf = lab_dir / HOSTS_DIR / cloud.name
    write_file(conf / "server.conf", pki.server_config(), 0o644)
    write_file(conf / "ca.crt", vpn.ca_crt, 0o644)
    write_file(conf / "server.crt", vpn.server_crt, 0o644)
    write_file(conf / "server.key", vpn.server_key, 0o600)
    write_file(conf / "tls-crypt.key", vpn.tls_crypt, 0o600)
    write_file(conf / "setup.sql", topology_writer.setup_sql(values), 0o600)


def _machine(client, steps: Steps, lab_dir: Path, h: Host) -> None:
    with steps.step(f"machine {h.name} ({h.address})") as step:
        spec = machines.machine_spec(client, h, lab_dir / HOSTS_DIR / h.name)
        did = machines.ensure_machine(client, spec)
        step.note(f"{did}, waiting for its services")
        machines.wait_ready(client, h)
        step.note(did)


def _check(steps: Steps, lab_dir: Path, h: Host) -> None:
    with steps.step(f"SSH login to {h.name} (strict host key)") as step:
        step.note(check_login(h, lab_dir / KEY_FILE, lab_dir / KNOWN_HOSTS))


@_docker_errors("removing the lab")
def down(lab_dir: Path, remove_images: bool) -> dict[str, Any]:
    """Remove every container, network, volume and file the lab made (and images if asked)."""
    with Steps() as steps:
        client = _engine(steps)
        dirs = {lab_dir.resolve()}
        made_in = machines.lab_dir_of(client)
        if made_in is not None:
            dirs.add(made_in)
        with steps.step("containers, network, volumes") as step:
            removed = machines.remove_all(client)
            step.note(", ".join(f"{len(v)} {k}" for k, v in removed.items()))
        with steps.step("files") as step:
            files = [str(p) for d in sorted(dirs) for p in remove_lab_files(d)]
            step.note(f"{len(files)} removed")
        removed["files"] = files
        if remove_images:
            with steps.step("images and caches") as step:
                removed["images"] = images.remove_images(client)
                wheelhouse = host_tools.repo_root() / "stacks" / "app" / "wheels"
                if wheelhouse.is_dir():
                    shutil.rmtree(wheelhouse)
                    removed["files"].append(str(wheelhouse))
                step.note(f"{len(removed['images'])} images")
    return removed


def remove_lab_files(lab_dir: Path) -> list[Path]:
    """Remove the files `lab up` writes in `lab_dir` (and the folder if it is then empty)."""
    removed = []
    for name in MADE_FILES:
        path = lab_dir / name
        if path.is_file():
            path.unlink()
            removed.append(path)
    for name in MADE_DIRS:
        path = lab_dir / name
        if path.is_dir():
            shutil.rmtree(path)
            removed.append(path)
    if lab_dir.is_dir() and not any(lab_dir.iterdir()):
        lab_dir.rmdir()
        removed.append(lab_dir)
    return removed


@_docker_errors("reading the lab")
def status() -> dict[str, Any]:
    """The lab's folder and the state of each of its hosts."""
    client = _engine()
    made_in = machines.lab_dir_of(client)
    return {
        "dir": str(made_in) if made_in else None,
        "hosts": [machines.machine_state(client, h) for h in HOSTS],
    }


def _host(name: str) -> Host:
    if name not in HOST_NAMES:
        raise UsageError(f"no lab host named {name!r}", f"hosts: {', '.join(HOST_NAMES)}")
    return host(name)


_ACTIONS = {
    "stop": machines.stop,  # power off; the disk is kept
    "start": machines.start,  # power on and wait for the services
    "cut": machines.disconnect,  # unplug from the lab network
    "heal": machines.connect,  # plug back in at the fixed address
    "pause": machines.pause,  # freeze (a hung machine)
    "unpause": machines.unpause,
}


@_docker_errors("changing a lab host")
def act(action: str, name: str) -> bool:
    """Run `stop`, `start`, `cut`, `heal`, `pause` or `unpause` on one host.

    Returns False if the host already was in that state.
    """
    h = _host(name)
    return _ACTIONS[action](_engine(), h)
