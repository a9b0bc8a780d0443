"""The lab, built once per test run and shared by every end-to-end test.

`surveyctl lab up` runs once per session (a warm lab is reused in seconds); the last
test takes it down. Set SURVEYCTL_E2E_KEEP_LAB=1 to keep the lab after the run (and
reuse one that exists, wherever its files are), for fast iterations. SURVEYCTL_E2E_LAB_DIR
chooses the folder (default: the checkout's .lab, as for users).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
KEEP_LAB = os.environ.get("SURVEYCTL_E2E_KEEP_LAB") == "1"
LAB_DIR = Path(os.environ.get("SURVEYCTL_E2E_LAB_DIR", REPO / ".lab"))
ADDRESSES = {
    "lb": "172.31.56.10",
    "app1": "172.31.56.11",
    "app2": "172.31.56.12",
    "cloud": "172.31.56.20",
}
LAST = "lab_teardown"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{LAST}: runs after every other test (takes the lab down)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Among the end-to-end tests: test_lab.py first (it checks the bare lab: no cluster,
    no VPN client yet), test_reliability.py (it stops, cuts and kills things) after the
    tests that want a calm cluster, and the one that takes the lab down last."""
    order = {"test_lab.py": 1, "test_reliability.py": 3}

    def rank(item: pytest.Item) -> int:
        if item.get_closest_marker(LAST) is not None:
            return 4
        if "e2e" not in item.path.parts:
            return 0
        return order.get(item.path.name, 2)

    items.sort(key=rank)


def surveyctl(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """Run the real CLI; output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "survey_ctl", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env={**os.environ, "NO_COLOR": "1"},
    )


@dataclass
class Lab:
    """The running lab and ways to reach its hosts the way a user would."""

    dir: Path
    up_seconds: float
    images_loaded: set[tuple[str, str]] = field(default_factory=set)

    @property
    def topology(self) -> Path:
        """The lab's surveyctl.yaml, for `surveyctl -c`."""
        return self.dir / "surveyctl.yaml"

    @property
    def key(self) -> Path:
        return self.dir / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.dir / "known_hosts"

    def env(self) -> dict[str, str]:
        """The secrets in the lab's .env."""
        lines = (self.dir / ".env").read_text().splitlines()
        return dict(line.split("=", 1) for line in lines if "=" in line and line[0] != "#")

    def ssh_argv(self, host: str, user: str = "deploy", known_hosts: Path | None = None):
        """OpenSSH with the generated key and known_hosts, strict host-key checking."""
        return [
            "ssh",
            "-i",
            str(self.key),
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            f"UserKnownHostsFile={known_hosts or self.known_hosts}",
            "-o",
            "ConnectTimeout=5",
            "-o",
            "LogLevel=ERROR",
            f"{user}@{ADDRESSES[host]}",
        ]

    def ssh(
        self,
        host: str,
        command: str,
        stdin: str | bytes | None = None,
        timeout: float = 120,
        **kwargs,
    ) -> subprocess.CompletedProcess[bytes]:
        """Run `command` on `host` over SSH."""
        data = stdin.encode() if isinstance(stdin, str) else stdin
        return subprocess.run(
            [*self.ssh_argv(host, **kwargs), command],
            input=data,
            capture_output=True,
            timeout=timeout,
        )

    def load_image(self, host: str, tag: str) -> None:
        """Copy a locally built image into the host's Docker Engine (docker save | docker load)."""
        if (host, tag) in self.images_loaded:
            return
        if self.ssh(host, f"docker image inspect {tag}").returncode != 0:
            import docker

            client = docker.from_env(version="auto")
            with subprocess.Popen(
                [*self.ssh_argv(host), "docker load -q"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            ) as load:
                for chunk in client.images.get(tag).save(named=True):
                    load.stdin.write(chunk)
                load.stdin.close()
                assert load.wait(timeout=300) == 0, load.stderr.read()
        self.images_loaded.add((host, tag))


def _existing_lab_dir() -> Path | None:
    done = surveyctl("lab", "status", "--json", timeout=60)
    if done.returncode != 0:
        return None
    made_in = json.loads(done.stdout)["dir"]
    return Path(made_in) if made_in else None


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    """The lab, up (built or reused), for the whole session."""
    if platform.system() != "Linux" or os.geteuid() != 0:
        pytest.skip("the lab needs Linux and root")
    lab_dir = LAB_DIR
    existing = _existing_lab_dir()
    if existing is not None and existing != lab_dir.resolve():
        if KEEP_LAB:
            lab_dir = existing
        else:  # a lab made from another checkout: replace it
            done = surveyctl("lab", "down", timeout=300)
            assert done.returncode == 0, done.stderr
    t0 = time.monotonic()
    done = surveyctl("lab", "up", "--dir", str(lab_dir))
    assert done.returncode == 0, done.stderr
    the_lab = Lab(dir=lab_dir.resolve(), up_seconds=time.monotonic() - t0)
    yield the_lab
    if not KEEP_LAB and (the_lab.dir / "surveyctl.yaml").exists():
        surveyctl("lab", "down", "--dir", str(the_lab.dir), timeout=300)


# ---------------------------------------------------------------- the cluster on the lab
# (owned by the cluster engineer: tests/e2e/test_cluster.py and survey_ctl/cluster/)


@dataclass
class ClusterUp:
    """`surveyctl up` on the lab, run once per session: its output and how long it took."""

    seconds: float
    stdout: str
    stderr: str


@pytest.fixture(scope="session")
def cluster_up(lab: Lab) -> ClusterUp:
    """The cluster converged on the lab (`surveyctl up`), once per session."""
    started = time.monotonic()
    done = surveyctl("up", "-c", str(lab.topology), timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    return ClusterUp(time.monotonic() - started, done.stdout, done.stderr)
