"""Give each managed host the Python that Ansible's docker modules need (python3 and
python3-requests), from Debian packages fetched here: the lab's VMs have no Python and
no route to a mirror. pyinfra and surveyctl need nothing on the hosts.

The packages come from the lab's .deb cache (the same versions the VMs were built
from) plus `apt-get download` for the rest; they are streamed as a tar over SSH as
root (the lab's key logs in as root too) and installed with `dpkg -i
--skip-same-version`. Hosts that already have both are left alone.

    .venv/bin/python benchmarks/peers/host_python.py --topology .lab/surveyctl.yaml
    .venv/bin/python benchmarks/peers/host_python.py --container NAME   # a test container
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LAB_DEBS = Path("/var/cache/surveyctl-lab/debs")
CACHE = REPO / "benchmarks" / ".cache-debs"
WANTED = ("python3", "python3-requests")
CHECK = "command -v python3 >/dev/null && python3 -c 'import requests' 2>/dev/null"
# A second dpkg pass settles the order python3-minimal/python3 need among themselves.
INSTALL = ("d=$(mktemp -d) && tar -x -C \"$d\" && export DEBIAN_FRONTEND=noninteractive; "
           "for pass in 1 2; do dpkg -i --skip-same-version \"$d\"/*.deb >/dev/null 2>&1 "
           "&& break; done; dpkg --configure -a >/dev/null 2>&1; rm -rf \"$d\"; " + CHECK)


def closure(packages: tuple[str, ...]) -> list[str]:
    """The packages and their recursive Depends/PreDepends (this machine's apt lists)."""
    shown = subprocess.run(["apt-cache", "depends", "--recurse", "--no-recommends",
                            "--no-suggests", "--no-conflicts", "--no-breaks", "--no-replaces",
                            "--no-enhances", *packages], capture_output=True, text=True,
                           check=True).stdout
    return sorted({line.strip() for line in shown.splitlines()
                   if line and not line.startswith(" ") and not line.startswith("<")})


def debs(packages: list[str]) -> list[Path]:
    """One .deb per package: the lab's cached one when there is one, else downloaded."""
    CACHE.mkdir(parents=True, exist_ok=True)
    found = []
    missing = []
    for name in packages:
        cached = sorted(LAB_DEBS.glob(f"{name}_*.deb")) or sorted(CACHE.glob(f"{name}_*.deb"))
        if cached:
            found.append(cached[-1])
        else:
            missing.append(name)
    if missing:
        subprocess.run(["apt-get", "download", *missing], cwd=CACHE, check=True,
                       capture_output=True)
        found += [sorted(CACHE.glob(f"{name}_*.deb"))[-1] for name in missing]
    return found


def bundle(files: list[Path]) -> bytes:
    """A tar of the .deb files (flat)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in files:
            tar.add(path, arcname=path.name)
    return buffer.getvalue()


def ensure(run: Callable[[str, bytes | None], int], payload: Callable[[], bytes]) -> str:
    """Install on one host through `run(script, stdin) -> exit code` unless present."""
    if run(CHECK, None) == 0:
        return "present"
    return "installed" if run(INSTALL, payload()) == 0 else "FAILED"


def main() -> None:
    """CLI: every host of a topology (SSH as root), or one local test container."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topology", type=Path)
    parser.add_argument("--container")
    args = parser.parse_args()
    cached: list[bytes] = []

    def payload() -> bytes:
        if not cached:
            cached.append(bundle(debs(closure(WANTED))))
        return cached[0]

    if args.container:
        def run(script: str, stdin: bytes | None) -> int:
            return subprocess.run(["docker", "exec", "-i", args.container, "sh", "-c", script],
                                  input=stdin or b"", capture_output=True).returncode
        print(f"{args.container}: {ensure(run, payload)}")
        return
    sys.path.insert(0, str(REPO))
    from survey_ctl.config import load_topology

    topo = load_topology(args.topology)
    for host in topo.hosts:
        ssh = ["ssh", "-i", str(host.ssh.identity_file), "-o",
               f"UserKnownHostsFile={host.ssh.known_hosts}", "-o", "StrictHostKeyChecking=yes",
               "-o", "IdentitiesOnly=yes", "-p", str(host.ssh.port), f"root@{host.address}"]

        def run(script: str, stdin: bytes | None, ssh=ssh) -> int:
            return subprocess.run([*ssh, script], input=stdin or b"",
                                  capture_output=True).returncode
        print(f"{host.name}: {ensure(run, payload)}", flush=True)


if __name__ == "__main__":
    main()
