"""`surveyctl up/plan/down/logs` on the lab: a real cluster, used over HTTP through Nginx.

up → every app container healthy and reaching MariaDB → db-migrate → sign up, log in
and answer the survey through Nginx, the session surviving both backends → the answer
is in MariaDB (through the SSH tunnel via the vpn host) → a second up changes nothing →
repairs → down leaves nothing of ours → up again (the cluster is shared by later tests).
Traffic goes only to the lab's addresses.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import time
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import ADDRESSES, ClusterUp, Lab, surveyctl

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

BASE = f"http://{ADDRESSES['lb']}"
VMS = ("lb", "app1", "app2")
PASSWORD = "a sturdy passphrase 42"
_CSRF = re.compile(r'<input\b[^>]*name="csrf_token"[^>]*value="([^"]*)"', re.IGNORECASE)


def _config(lab: Lab) -> list[str]:
    return ["-c", str(lab.topology)]


def _secrets(lab: Lab) -> list[str]:
    return [value for value in lab.env().values() if len(value) >= 8]


class Browser:
    """urllib with a cookie jar: GET pages, POST forms with their CSRF token."""

    def __init__(self) -> None:
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
        self.served_by: list[str] = []

    def get(self, path: str) -> tuple[int, str, str]:
        """(status, final URL, body)."""
        return self._open(urllib.request.Request(BASE + path))

    def post_form(self, path: str, data: dict) -> tuple[int, str, str]:
        """GET `path`, then POST `data` with the page's csrf_token; (status, URL, body)."""
        _, _, page = self.get(path)
        match = _CSRF.search(page)
        assert match, f"no csrf_token in {path}"
        body = urllib.parse.urlencode({**data, "csrf_token": html.unescape(match.group(1))},
                                      doseq=True).encode()
        return self._open(urllib.request.Request(BASE + path, data=body, method="POST"))

    def _open(self, request: urllib.request.Request) -> tuple[int, str, str]:
        try:
            with self.opener.open(request, timeout=30) as response:
                self.served_by.append(response.headers.get("X-Served-By", ""))
                return response.status, response.url, response.read().decode()
        except urllib.error.HTTPError as exc:
            self.served_by.append(exc.headers.get("X-Served-By", ""))
            return exc.code, exc.url, exc.read().decode()


def _db(lab: Lab):
    """A PyMySQL connection to the lab's MariaDB through an SSH channel via the vpn host."""
    from survey_ctl.config import load_topology
    from survey_ctl.remote.mysql import connect_through
    from survey_ctl.remote.ssh import connect

    topo = load_topology(lab.topology)
    conn = connect(topo.vpn_host)
    db = topo.database
    channel = conn.open_tunnel(db.host, db.port)
    mysql = connect_through(channel, user=db.user, password=db.password.get_secret_value(),
                            database=db.name)
    return conn, mysql


def test_up_converged_every_host_and_checked_the_db_path(lab: Lab, cluster_up: ClusterUp) -> None:
    out = cluster_up.stdout
    for host in VMS:
        assert f"✓ {host}: converged" in out, out
    assert out.count("✓ pesquisa-app-1: healthy") == 2
    assert out.count("✓ pesquisa-app-1 → MariaDB: mariadb ok, redis ok") == 2
    assert "✓ vpn tun0: up, 10.8.0." in out
    assert "✓ nginx on port 80: /nginx-health 200, /healthz 200" in out
    for secret in _secrets(lab):
        assert secret not in out and secret not in cluster_up.stderr
    print(f"first up in this session: {cluster_up.seconds:.1f} s")


def test_secrets_only_inside_the_containers(lab: Lab, cluster_up: ClusterUp) -> None:
    """Not in argv, `docker inspect`, nor the SSH user's files; 0400 and the app's user."""
    secrets = _secrets(lab)
    for host in ("app1", "app2", "lb"):
        shown = lab.ssh(host, "docker inspect $(docker ps -aq --filter label=surveyctl.cluster)"
                        "; ps -eo args; cat $(find ~/.surveyctl -type f) 2>/dev/null")
        assert shown.returncode == 0, shown.stderr
        for secret in secrets:
            assert secret.encode() not in shown.stdout, host
    mode = lab.ssh("app1", "docker exec pesquisa-app-1 stat -c '%U %a' "
                   "/run/secrets/survey_db_password /run/secrets/survey_secret_key")
    assert mode.stdout.decode().split() == ["survey", "400", "survey", "400"]


def _reachable(lab: Lab, source: str, targets: list[str]) -> dict[str, bool]:
    """Which `address/port` targets accept a TCP connection from host `source`."""
    script = "; ".join(f"timeout 3 bash -c '</dev/tcp/{t}' 2>/dev/null && echo {t} || true"
                       for t in targets)
    done = lab.ssh(source, script)
    opened = set(done.stdout.decode().split())
    return {target: target in opened for target in targets}


def test_firewall_lets_only_the_peers_in(lab: Lab, cluster_up: ClusterUp) -> None:
    """App ports only from the lb; Redis and the MariaDB proxy only from the app hosts."""
    app, redis, db = "172.31.56.11/8000", "172.31.56.10/6379", "172.31.56.10/3306"
    assert _reachable(lab, "cloud", [app, redis, db]) == {app: False, redis: False, db: False}
    assert _reachable(lab, "app2", [app, redis, db]) == {app: False, redis: True, db: True}
    assert _reachable(lab, "lb", [app]) == {app: True}


def test_migrate_then_answer_the_survey_through_nginx(lab: Lab, cluster_up: ClusterUp) -> None:
    from tests.app.survey_helpers import VALID

    migrated = surveyctl("db-migrate", *_config(lab), timeout=300)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr

    email = f"e2e-{time.time_ns()}@example.com"
    signup = Browser()
    status, _, _ = signup.post_form("/signup", {"email": email, "new_password": PASSWORD,
                                                "confirm": PASSWORD})
    assert status == 200  # 302 followed to the home page

    browser = Browser()
    status, url, _ = browser.post_form("/login", {"email": email, "password": PASSWORD})
    assert status == 200 and "/login" not in url
    for _ in range(6):  # the same session, served by both backends
        status, url, page = browser.get("/survey")
        assert status == 200 and url.endswith("/survey") and "csrf_token" in page
    assert {"app1-app-1", "app2-app-1"} <= set(browser.served_by), browser.served_by
    status, url, _ = browser.post_form("/survey", VALID)
    assert status == 200 and "/survey/thanks" in url, url

    ssh, mysql = _db(lab)
    try:
        with mysql.cursor() as cur:
            cur.execute("SELECT r.income_bracket, r.household_size, r.neighbourhood "
                        "FROM responses r JOIN users u ON u.id = r.user_id WHERE u.email = %s",
                        (email,))
            assert cur.fetchall() == (("3001_5000", 3, "centro"),)
    finally:
        mysql.close()
        ssh.close()


def test_second_up_and_plan_change_nothing(lab: Lab, cluster_up: ClusterUp) -> None:
    started = time.monotonic()
    again = surveyctl("up", *_config(lab), timeout=600)
    seconds = time.monotonic() - started
    assert again.returncode == 0, again.stdout + again.stderr
    assert "0 changes: nothing to do" in again.stderr
    for host in VMS:
        assert f"✓ {host}: converged (0 change(s))" in again.stdout
    plan = surveyctl("plan", *_config(lab), timeout=300)
    assert plan.returncode == 0, plan.stderr
    assert "0 changes: nothing to do" in plan.stderr
    assert [line for line in plan.stdout.splitlines() if line.startswith("  ")
            and not line.startswith("  = keep")] == []
    print(f"no-op up: {seconds:.1f} s")


def test_up_repairs_a_firewall_chain_removed_by_hand(lab: Lab, cluster_up: ClusterUp) -> None:
    """`plan` sees the chain gone; `up` puts it back (one change) and the port is closed."""
    from survey_ctl.cluster import firewall
    from survey_ctl.config import load_topology

    topo = load_topology(lab.dir / "surveyctl.yaml")
    removed = lab.ssh("app2", "sh -s", stdin=firewall.remove_script(topo), user="root")
    assert removed.stdout.decode().split() == [firewall.REMOVED], removed
    app = "172.31.56.12/8000"
    assert _reachable(lab, "cloud", [app]) == {app: True}  # open while the chain is gone

    plan = surveyctl("plan", *_config(lab), timeout=300)
    assert plan.returncode == 0, plan.stderr
    assert "+ apply firewall chain SURVEYCTL-pesquisa" in plan.stdout, plan.stdout
    again = surveyctl("up", *_config(lab), timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "app2: apply firewall chain SURVEYCTL-pesquisa" in again.stderr, again.stderr
    assert "✓ app2: converged (1 change(s))" in again.stdout, again.stdout
    assert "✓ app1: converged (0 change(s))" in again.stdout, again.stdout
    assert _reachable(lab, "cloud", [app]) == {app: False}


def test_logs_prefix_host_and_container(lab: Lab, cluster_up: ClusterUp) -> None:
    run = surveyctl("logs", "nginx", "--tail", "5", *_config(lab), timeout=120)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines and all(line.startswith("lb/pesquisa-nginx | ") for line in lines)
    apps = surveyctl("logs", "app", "--tail", "3", *_config(lab), timeout=120)
    prefixes = {line.split(" | ")[0] for line in apps.stdout.splitlines()}
    assert prefixes == {"app1/pesquisa-app-1", "app2/pesquisa-app-1"}


def test_nginx_config_change_is_reloaded_not_replaced(lab: Lab, cluster_up: ClusterUp,
                                                      tmp_path: Path) -> None:
    before = lab.ssh("lb", "docker inspect -f '{{.Id}}' pesquisa-nginx").stdout
    changed = _copy_topology(lab, tmp_path, lambda data: data["lb"].update(
        algorithm="round_robin"))
    try:
        run = surveyctl("up", "-c", str(changed), timeout=600)
        assert run.returncode == 0, run.stdout + run.stderr
        assert "lb: reload pesquisa-nginx (nginx.conf changed)" in run.stderr
        conf = lab.ssh("lb", "docker exec pesquisa-nginx cat /etc/nginx/surveyctl/nginx.conf")
        assert b"least_conn" not in conf.stdout
    finally:
        back = surveyctl("up", *_config(lab), timeout=600)
    assert back.returncode == 0 and "reload pesquisa-nginx" in back.stderr, back.stderr
    assert lab.ssh("lb", "docker inspect -f '{{.Id}}' pesquisa-nginx").stdout == before


def test_a_broken_nginx_config_never_goes_live(lab: Lab, cluster_up: ClusterUp) -> None:
    """`nginx -t` refuses the candidate: the live file and the running Nginx stay as they are."""
    import dataclasses

    from survey_ctl.cluster.executor import HostRun
    from survey_ctl.cluster.facts import observe
    from survey_ctl.config import load_topology
    from survey_ctl.errors import HostError
    from survey_ctl.remote.ssh import connect
    from survey_ctl.specs import ConfigFile, nginx_spec

    topo = load_topology(lab.topology)
    good = nginx_spec(topo)
    live = good.config_files["nginx.conf"]
    broken = dataclasses.replace(good, config_files={"nginx.conf": ConfigFile(
        live.target, live.content.replace("events {", "events { no_such_directive on;"),
        live.reload, live.check)})
    with connect(topo.lb_host) as conn:
        facts = observe(conn, topo, [good], firewall_mode=None)
        with pytest.raises(HostError) as caught:
            HostRun(conn, topo, facts, lambda _: None).reload(broken)
        shown = conn.run(["cat", f"{facts.state}/pesquisa-nginx/config/nginx.conf"]).text
        leftovers = conn.run(["ls", "-A", f"{facts.state}/pesquisa-nginx/config"]).text.split()
    assert "refused the new config" in caught.value.message
    assert "no_such_directive" in caught.value.message
    assert shown == live.content and leftovers == ["nginx.conf"]
    with urllib.request.urlopen(f"{BASE}/nginx-health", timeout=10) as response:
        assert response.status == 200


def test_half_done_hosts_are_repaired(lab: Lab, cluster_up: ClusterUp) -> None:
    """A stopped container is started; a removed container and network are made again."""
    settled = surveyctl("up", *_config(lab), timeout=600)  # the image as the tree is now
    assert settled.returncode == 0, settled.stdout + settled.stderr
    assert lab.ssh("app1", "docker stop -t 1 pesquisa-app-1").returncode == 0
    gone = lab.ssh("app2", "docker rm -f pesquisa-app-1 && docker network rm pesquisa")
    assert gone.returncode == 0, gone.stderr
    run = surveyctl("up", *_config(lab), timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "app1: start pesquisa-app-1 (it is exited)" in run.stderr
    assert "app2: create network pesquisa" in run.stderr
    assert "app2: create pesquisa-app-1 (not on the host)" in run.stderr
    assert "3 change(s)" in run.stderr


def _copy_topology(lab: Lab, folder: Path, change=None, known_hosts: str | None = None) -> Path:
    """The lab's topology copied to `folder` (with its .env), optionally edited."""
    data = yaml.safe_load(lab.topology.read_text())
    if change:
        change(data)
    if known_hosts is not None:
        (folder / "known_hosts").write_text(known_hosts)
        data["ssh"]["known_hosts"] = str(folder / "known_hosts")
    shutil.copy(lab.dir / ".env", folder / ".env")
    path = folder / "surveyctl.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_changed_host_key_is_refused(lab: Lab, cluster_up: ClusterUp, tmp_path: Path) -> None:
    from tests.sshd import keygen

    other = keygen(tmp_path / "other_key").with_suffix(".pub").read_text().split()[:2]
    lines = lab.known_hosts.read_text().splitlines()
    forged = [f"{ADDRESSES['app1']} {' '.join(other)}" if line.startswith(ADDRESSES["app1"])
              else line for line in lines]
    assert forged != lines
    path = _copy_topology(lab, tmp_path, known_hosts="\n".join(forged) + "\n")
    run = surveyctl("plan", "-c", str(path), timeout=120)
    assert run.returncode == 1
    assert "app1: host key for 172.31.56.11 has CHANGED" in run.stdout + run.stderr
    assert "ssh-keygen -R" in run.stdout + run.stderr
    assert "lb: 0 change(s)" in run.stdout  # the other hosts are still planned


def test_an_unreachable_host_fails_alone(lab: Lab, cluster_up: ClusterUp,
                                         tmp_path: Path) -> None:
    """app2 behind a closed SSH port: it is reported with why; lb and app1 still converge."""
    def closed_port(data) -> None:
        data["hosts"][2]["ssh"] = {"port": 2222}

    path = _copy_topology(lab, tmp_path, closed_port,
                          known_hosts=lab.known_hosts.read_text())
    run = surveyctl("up", "-c", str(path), timeout=600)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "✗ app2: failed: app2: connection refused by 172.31.56.12:2222" in run.stdout
    assert "✓ lb: converged" in run.stdout and "✓ app1: converged" in run.stdout
    assert "error: up failed on app2 (2 of 3 host(s) ok)" in run.stderr


def test_missing_secret_stops_before_any_host(lab: Lab, tmp_path: Path) -> None:
    path = _copy_topology(lab, tmp_path)
    env_lines = (tmp_path / ".env").read_text().splitlines()
    (tmp_path / ".env").write_text("\n".join(line for line in env_lines
                                             if not line.startswith("SURVEY_DB_PASSWORD=")))
    started = time.monotonic()
    run = surveyctl("up", "-c", str(path), timeout=60)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "SURVEY_DB_PASSWORD" in run.stderr and run.stdout == ""
    assert time.monotonic() - started < 10


def test_down_leaves_nothing_then_up_again(lab: Lab, cluster_up: ClusterUp) -> None:
    """`down` (volumes kept), checked on each host as root; then `up` from images present."""
    run = surveyctl("down", *_config(lab), timeout=600)
    try:
        assert run.returncode == 0, run.stdout + run.stderr
        for host in VMS:
            assert f"✓ {host}: removed" in run.stdout
            left = lab.ssh(host, "docker ps -aq --filter label=surveyctl.cluster=pesquisa; "
                           "docker network ls -q --filter name=^pesquisa$; "
                           "iptables -S | grep -i surveyctl; "
                           "ls -A /home/deploy/.surveyctl/pesquisa", user="root")
            # only the append-only audit log (with `down` in it) and the lock file stay
            assert left.stdout.decode().split() == [".lock", "audit.log"], (host, left.stdout)
            last = lab.ssh(host, "tail -n 1 ~/.surveyctl/pesquisa/audit.log").stdout
            assert json.loads(last)["command"] == "down", last
        volumes = lab.ssh("lb", "docker volume ls -q --filter label=surveyctl.cluster=pesquisa")
        assert volumes.stdout.decode().split() == ["pesquisa-redis-data"]  # kept
        again = surveyctl("down", *_config(lab), timeout=600)  # nothing left: says so
        assert again.returncode == 0, again.stdout + again.stderr
        assert "removed" not in again.stderr, again.stderr
    finally:
        started = time.monotonic()
        again = surveyctl("up", *_config(lab), timeout=900)
        seconds = time.monotonic() - started
    assert again.returncode == 0, again.stdout + again.stderr
    print(f"up from images present, nothing running: {seconds:.1f} s")
