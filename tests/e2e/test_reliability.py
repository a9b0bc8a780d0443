"""Failure behaviour on the lab under a bounded load (tests/e2e/load.py): 20 respondents.

Order: deploy (a), an app host stopped (b), Redis restarted (d), `up` with a host cut
off (e), the VPN cut (c), `up` killed midway (f). Each leaves the cluster converged.
Figures go to artifacts/reliability.json (docs/reliability.md is written from them).
A changed host key (g) is test_cluster.py's test_changed_host_key_is_refused.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import REPO, ClusterUp, Lab, surveyctl
from tests.e2e.load import Generator, Load, write_figures
from tests.e2e.test_cluster import _db

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

FIGURES = REPO / "artifacts" / "reliability.json"
SOURCES = [f"172.31.56.{n}" for n in range(200, 220)]  # one address per respondent
USERS = 20
_RESET_LIMITS = ("docker exec pesquisa-redis sh -c 'export REDISCLI_AUTH=$(sed -n "
                 "\"s/^requirepass //p\" /run/secrets/redis.conf); redis-cli --scan --pattern "
                 "\"survey:limits*\" | xargs -r redis-cli del >/dev/null; echo reset'")


def _config(lab: Lab) -> list[str]:
    return ["-c", str(lab.topology)]


@pytest.fixture(scope="module")
def sources() -> Iterator[list[str]]:
    """Source addresses for the respondents on this machine's lab bridge (removed after)."""
    shown = subprocess.run(["ip", "-o", "-4", "addr", "show", "to", "172.31.56.1/32"],
                           capture_output=True, text=True, check=True).stdout.split()
    if not shown:
        pytest.skip("no lab bridge on this machine")
    device = shown[1]
    for address in SOURCES:
        subprocess.run(["ip", "addr", "replace", f"{address}/32", "dev", device], check=True)
    yield SOURCES
    for address in SOURCES:
        subprocess.run(["ip", "addr", "del", f"{address}/32", "dev", device], check=False)


@pytest.fixture
def load(lab: Lab, cluster_up: ClusterUp, sources: list[str]):
    """A factory of load generators; the app's rate-limit counters reset first."""
    migrated = surveyctl("db-migrate", *_config(lab), timeout=300)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr

    def make(name: str, seconds: float = 25.0) -> Generator:
        reset = lab.ssh("lb", _RESET_LIMITS)
        assert reset.returncode == 0 and b"reset" in reset.stdout, reset.stderr
        return Generator(name, USERS, seconds, sources).start()

    return make


def _stored(lab: Lab, run: Load) -> int:
    ssh, mysql = _db(lab)
    try:
        with mysql.cursor() as cursor:
            return run.stored(cursor)
    finally:
        mysql.close()
        ssh.close()


def _record(scenario: str, run: Load, stored: int | None, **more) -> dict:
    figures = {**run.summary(), "stored": stored, **more}
    write_figures(FIGURES, scenario, figures)
    print(json.dumps(figures))
    return figures


def _converged(lab: Lab) -> None:
    done = surveyctl("up", *_config(lab), timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr


def _until(predicate, limit: float, step: float = 0.25) -> float | None:
    """Seconds until `predicate()` held (polled), or None after `limit`."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if predicate():
            return time.monotonic() - started
        time.sleep(step)
    return None


def _tunnel_restarted(lab: Lab, since: int) -> bool:
    """Whether the OpenVPN client on lb lost its tunnel since `since` (epoch seconds)."""
    logs = lab.ssh("lb", f"docker logs --since {since} pesquisa-vpn 2>&1")
    assert logs.returncode == 0, logs.stdout
    return b"Inactivity timeout" in logs.stdout


def test_a_deploy_under_load_loses_nothing(lab: Lab, load) -> None:
    release = f"pesquisa-app:e2e-{int(time.time())}"  # the tree's image as a new release
    subprocess.run(["docker", "tag", "pesquisa-app:latest", release], check=True)
    since = int(time.time())
    gen = load("deploy", seconds=120)
    time.sleep(5)
    started = time.monotonic()
    deployed = surveyctl("deploy", *_config(lab), "--image", release, timeout=600)
    deploy_s = time.monotonic() - started
    time.sleep(3)
    gen.stop.set()
    run = gen.wait()
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    stored = _stored(lab, run)
    _record("a_deploy", run, stored, deploy_seconds=round(deploy_s, 1))
    assert run.failed() == [], run.failed()[:5]
    # Nothing was down, so the app's "try again" page must not appear (it did, once in
    # ~1,000 requests, while two saves deadlocked in InnoDB: they are re-run now), unless
    # the tunnel itself stalled meanwhile (seen once, with a hypervisor memory event).
    unavailable = [r for r in run.requests if r.status == 503]
    assert not unavailable or _tunnel_restarted(lab, since), unavailable
    assert run.acknowledged >= USERS // 2
    assert stored == run.acknowledged
    plan = surveyctl("plan", *_config(lab), timeout=300)
    assert "0 changes: nothing to do" in plan.stderr, plan.stdout + plan.stderr


def test_a_new_release_that_never_gets_healthy_is_removed(lab: Lab, cluster_up: ClusterUp,
                                                         tmp_path) -> None:
    """An image whose app exits at once: deploy exits 1 with its logs, nothing changed."""
    broken = f"pesquisa-app:broken-{int(time.time())}"
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text('FROM pesquisa-app:latest\nENTRYPOINT ["python3", "-c", '
                          '"import sys; print(\'boom: no app here\'); sys.exit(3)"]\nCMD []\n')
    built = subprocess.run(["docker", "build", "-q", "-t", broken, str(tmp_path)],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    before = lab.ssh("app1", "docker inspect -f '{{.Id}}' pesquisa-app-1").stdout
    done = surveyctl("deploy", *_config(lab), "--image", broken, timeout=600)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "did not become healthy" in done.stderr and "last 20 log lines" in done.stderr
    assert "boom: no app here" in done.stderr
    assert lab.ssh("app1", "docker inspect -f '{{.Id}}' pesquisa-app-1").stdout == before
    assert lab.ssh("app1", "docker ps -aq --filter name=pesquisa-app-1-next").stdout == b""
    plan = surveyctl("plan", *_config(lab), timeout=300)
    subprocess.run(["docker", "image", "rm", broken], capture_output=True, check=False)
    assert "0 changes: nothing to do" in plan.stderr, plan.stdout + plan.stderr


def test_a_second_deploy_is_refused_while_one_runs(lab: Lab, cluster_up: ClusterUp) -> None:
    """The lock on the lb host: a second run is refused naming the holder; audit records."""
    first = subprocess.Popen([sys.executable, "-m", "survey_ctl", "rollback", *_config(lab)],
                             cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        held = _until(lambda: lab.ssh("lb", "test -d ~/.surveyctl/pesquisa/deploy.lock")
                      .returncode == 0, 30)
        assert held is not None
        second = surveyctl("up", *_config(lab), timeout=120)
        assert second.returncode == 1
        assert "is locked by `surveyctl rollback`" in second.stderr, second.stderr
        assert f"(pid {first.pid})" in second.stderr
    finally:
        out, err = first.communicate(timeout=600)
    assert first.returncode == 0, out + err
    audit = surveyctl("audit", *_config(lab), "--host", "lb", "--tail", "50", "--json")
    steps = [json.loads(line)["step"] for line in audit.stdout.splitlines()]
    assert any(step.startswith("release ") for step in steps), steps


def _status_red(lab: Lab, host: str) -> bool:
    done = surveyctl("status", *_config(lab), "--json", timeout=60)
    return done.returncode != 0 and host in done.stdout


def test_b_app_host_stopped_under_load(lab: Lab, load) -> None:
    gen = load("app_host_stopped", seconds=25)
    time.sleep(5)
    stopped_at = gen.elapsed()
    assert surveyctl("lab", "stop", "app2", timeout=120).returncode == 0
    stop_s = gen.elapsed() - stopped_at
    red_s = _until(lambda: _status_red(lab, "app2"), 15)
    run = gen.wait()
    try:
        window = (stopped_at, stopped_at + stop_s + 5)
        first = run.count(*window)
        early = len(run.failed(*window))
        later = run.failed(window[1])
        stored = _stored(lab, run)
        _record("b_app_host_stopped", run, stored, stop_command_seconds=round(stop_s, 1),
                failed_first_5s=early, requests_first_5s=first, failed_after=len(later),
                status_red_seconds=None if red_s is None else round(red_s, 1))
    finally:
        assert surveyctl("lab", "start", "app2", timeout=120).returncode == 0
        _converged(lab)
    assert early <= max(1, first // 100), run.failed(*window)
    assert later == [], later[:5]
    # `status` gives a silent host, and each probe, `--timeout` (3 s) before calling it
    # down, all in parallel; one poll also pays the CLI's start-up (about 3.5 s in all).
    # The target is 5 s (docs/reliability.md has the figure); the bound leaves room for a
    # loaded 2-core machine.
    assert red_s is not None and red_s <= 8, red_s
    assert stored == run.acknowledged


def test_d_redis_restarted_under_load(lab: Lab, load) -> None:
    gen = load("redis_restarted", seconds=25)
    time.sleep(5)
    restarted = lab.ssh("lb", "docker restart -t 5 pesquisa-redis", timeout=60)
    run = gen.wait()
    assert restarted.returncode == 0, restarted.stderr
    stored = _stored(lab, run)
    relogins = sum(1 for r in run.requests if r.path == "/login" and r.at > 5) // 2
    _record("d_redis_restarted", run, stored, logins_after_restart=relogins)
    assert 500 not in run.statuses and run.failed() == [], run.failed()[:5]
    assert stored == run.acknowledged


def test_e_up_with_a_host_cut_off(lab: Lab, cluster_up: ClusterUp) -> None:
    assert surveyctl("lab", "cut", "app1", timeout=120).returncode == 0
    try:
        started = time.monotonic()
        cut = surveyctl("up", *_config(lab), timeout=600)
        cut_s = time.monotonic() - started
    finally:
        assert surveyctl("lab", "heal", "app1", timeout=120).returncode == 0
    started = time.monotonic()
    healed = surveyctl("up", *_config(lab), timeout=600)
    healed_s = time.monotonic() - started
    write_figures(FIGURES, "e_host_cut", {"up_cut_seconds": round(cut_s, 1),
                                          "up_cut_exit": cut.returncode,
                                          "up_healed_seconds": round(healed_s, 1)})
    assert cut.returncode == 1, cut.stdout + cut.stderr
    assert "✗ app1: failed" in cut.stdout, cut.stdout
    assert "✓ lb: converged" in cut.stdout and "✓ app2: converged" in cut.stdout
    assert "up failed on app1 (2 of 3 host(s) ok)" in cut.stderr
    assert healed.returncode == 0, healed.stdout + healed.stderr


def test_c_vpn_cut_under_load(lab: Lab, load) -> None:
    gen = load("vpn_cut", seconds=30)
    time.sleep(5)
    down_at = gen.elapsed()
    assert surveyctl("vpn", "down", *_config(lab), timeout=120).returncode == 0
    cut_at = time.monotonic()
    down_done = gen.elapsed()
    check = surveyctl("vpn", "check", *_config(lab), timeout=60)
    check_s = time.monotonic() - cut_at
    time.sleep(8)
    up = surveyctl("vpn", "up", *_config(lab), timeout=300)
    run = gen.wait()
    assert up.returncode == 0, up.stdout + up.stderr
    stored = _stored(lab, run)
    # A request in flight when the tunnel drops waits on a dead MariaDB connection for
    # the app's I/O timeout (10 s, under Nginx's 35 s and the client's 30 s), then gets
    # the app's 503 page like the others: no 500, no 502, no 504, no connection error.
    in_flight = run.failed(0, down_done)
    _record("c_vpn_cut", run, stored, vpn_check_seconds=round(check_s, 1),
            vpn_check_exit=check.returncode, vpn_down_at=round(down_at, 1),
            failed_in_flight_at_cut=len(in_flight), failed_after_cut=len(run.failed(down_done)))
    assert check.returncode == 1 and check_s <= 10, check.stdout + check.stderr
    assert "MariaDB" in check.stdout + check.stderr
    assert run.statuses.get(503, 0) > 0
    assert run.failed() == [], run.failed()[:5]
    assert stored == run.acknowledged


def test_f_up_killed_midway_is_repaired(lab: Lab, cluster_up: ClusterUp) -> None:
    """Remove app2's container, kill `up` while it works, then `up` again repairs."""
    assert lab.ssh("app2", "docker rm -f pesquisa-app-1").returncode == 0
    killed = subprocess.Popen([sys.executable, "-m", "survey_ctl", "up", *_config(lab)],
                              cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen = threading.Event()

    def watch() -> None:
        for line in killed.stderr:  # type: ignore[union-attr]
            if b"create pesquisa-app-1" in line:
                seen.set()

    threading.Thread(target=watch, daemon=True).start()
    seen.wait(120)
    killed.send_signal(signal.SIGKILL)
    killed.wait(30)
    started = time.monotonic()
    again = surveyctl("up", *_config(lab), timeout=600)
    write_figures(FIGURES, "f_up_killed", {"repair_up_seconds":
                                           round(time.monotonic() - started, 1)})
    assert again.returncode == 0, again.stdout + again.stderr
    assert "✓ app2: converged" in again.stdout
