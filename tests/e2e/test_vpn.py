"""`vpn check | down | up` on the lab: the chain breaks where it should and comes back."""

from __future__ import annotations

import time

import pytest

from tests.e2e.conftest import Lab, surveyctl
from tests.e2e.test_status import wait_green

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


def _config(lab: Lab) -> list[str]:
    return ["-c", str(lab.topology)]


def test_vpn_check_passes(lab: Lab, cluster_up) -> None:
    wait_green(lab)
    run = surveyctl("vpn", "check", *_config(lab), timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert all(line.startswith("✓ ") for line in lines), run.stdout
    assert lines[0].startswith("✓ client container pesquisa-vpn")
    assert lines[1].startswith("✓ interface tun0: up, 10.8.0.")
    assert lines[2].startswith("✓ route to 10.8.0.1: dev tun0")
    assert lines[3].startswith("✓ MariaDB 10.8.0.1:3306 from lb")
    assert sum("MariaDB from app" in line for line in lines) == 2


def test_vpn_down_breaks_the_chain_and_up_repairs_it(lab: Lab, cluster_up) -> None:
    try:
        down = surveyctl("vpn", "down", *_config(lab), timeout=120)
        assert down.returncode == 0, down.stderr
        started = time.monotonic()
        check = surveyctl("vpn", "check", *_config(lab), timeout=120)
        elapsed = time.monotonic() - started
        assert check.returncode == 1, check.stdout + check.stderr
        assert elapsed < 10, elapsed
        assert check.stdout.startswith("✗ client container pesquisa-vpn: exited on lb")
        assert "first broken link: client container pesquisa-vpn" in check.stdout
        assert "hint: start it with `surveyctl vpn up`" in check.stdout
        status = surveyctl("status", *_config(lab), timeout=120)
        assert status.returncode == 1, status.stdout
        assert ": DOWN — " in status.stdout
    finally:
        up = surveyctl("vpn", "up", *_config(lab), timeout=300)
    assert up.returncode == 0, up.stdout + up.stderr
    assert "VPN up: interface tun0 up, 10.8.0." in up.stderr
    deadline = time.monotonic() + 60
    while True:  # the apps' DB proxy and pools recover on their own
        check = surveyctl("vpn", "check", *_config(lab), timeout=120)
        if check.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert check.returncode == 0, check.stdout
    wait_green(lab, timeout=30)
