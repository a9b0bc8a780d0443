"""Run a shell script in a private network namespace, for the firewall tests: real
iptables, nothing of this machine's own rules touched."""

from __future__ import annotations

import shutil
import subprocess

import pytest


def in_network_namespace(script: str) -> subprocess.CompletedProcess[str]:
    """`sh -c script` under `unshare --net`; skipped where that cannot run (the test
    command turns the skip into a failure: scripts/bootstrap installs both tools)."""
    if not (shutil.which("unshare") and shutil.which("iptables", path="/usr/sbin:/sbin")):
        pytest.skip("unshare or iptables missing")
    done = subprocess.run(["unshare", "--net", "sh", "-c", script], capture_output=True,
                          text=True, timeout=60)
    if done.returncode and "Operation not permitted" in done.stderr:
        pytest.skip("no permission to make a network namespace")
    return done
