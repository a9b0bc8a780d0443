"""Pure pieces of `survey_ctl.cluster`, by exact equality; the firewall script in a
private network namespace."""

from __future__ import annotations

import dataclasses
import shlex
from pathlib import Path

from pydantic import SecretStr

from survey_ctl.cluster import firewall
from survey_ctl.cluster.executor import HostPlan, _check_argv, plan_host
from survey_ctl.cluster.facts import HostFacts
from survey_ctl.cluster.images import ImageFact, build_argv, transfer_for
from survey_ctl.cluster.logs import logs_argv, matches
from survey_ctl.plan import Observed
from survey_ctl.specs import cluster_specs, firewall_rules, nginx_spec
from tests.unit.netns import in_network_namespace
from tests.unit.test_specs import make_topology

PROFILE = SecretStr("client\n")


def test_apply_and_remove_scripts(tmp_path: Path) -> None:
    topo = make_topology(tmp_path)
    host = topo.host("app1")
    rules = firewall_rules(topo, host)
    marker = rules[-1][rules[-1].index("--comment") + 1]
    assert firewall.apply_script(topo, host) == "\n".join([
        firewall.PATH,
        f"if iptables -w -S SURVEYCTL-pesquisa 2>/dev/null | grep -qF -- '{marker}' && "
        "iptables -w -C DOCKER-USER -j SURVEYCTL-pesquisa 2>/dev/null; then echo current; "
        "exit 0; fi",
        'if [ "${1:-}" = check ]; then echo stale; exit 0; fi',
        "iptables-restore -w --noflush <<'SURVEYCTL_RULES' || exit 1",
        "*filter",
        ":SURVEYCTL-pesquisa - [0:0]",
        "-A SURVEYCTL-pesquisa -i docker0 -j RETURN",
        "-A SURVEYCTL-pesquisa -i br-+ -j RETURN",
        "-A SURVEYCTL-pesquisa -p tcp -m conntrack --ctorigdst 192.168.56.11 --ctorigdstport "
        "8000 --ctdir ORIGINAL -s 192.168.56.10 -j RETURN",
        "-A SURVEYCTL-pesquisa -p tcp -m conntrack --ctorigdst 192.168.56.11 --ctorigdstport "
        "8000 --ctdir ORIGINAL -j DROP",
        "-A SURVEYCTL-pesquisa -p tcp -m conntrack --ctorigdst 192.168.56.11 --ctorigdstport "
        "8100 --ctdir ORIGINAL -s 192.168.56.10 -j RETURN",
        "-A SURVEYCTL-pesquisa -p tcp -m conntrack --ctorigdst 192.168.56.11 --ctorigdstport "
        "8100 --ctdir ORIGINAL -j DROP",
        f'-A SURVEYCTL-pesquisa -m comment --comment "{marker}" -j RETURN',
        "COMMIT",
        "SURVEYCTL_RULES",
        "iptables -w -C DOCKER-USER -j SURVEYCTL-pesquisa 2>/dev/null || "
        "iptables -w -I DOCKER-USER 1 -j SURVEYCTL-pesquisa || exit 1",
        "echo applied",
    ]) + "\n"
    assert firewall.remove_script(topo) == "\n".join([
        firewall.PATH,
        "iptables -w -n -L SURVEYCTL-pesquisa >/dev/null 2>&1 || { echo absent; exit 0; }",
        "while iptables -w -D DOCKER-USER -j SURVEYCTL-pesquisa 2>/dev/null; do :; done",
        "iptables -w -F SURVEYCTL-pesquisa 2>/dev/null; "
        "iptables -w -X SURVEYCTL-pesquisa 2>/dev/null",
        "echo removed",
    ]) + "\n"


def test_root_argv() -> None:
    assert firewall.root_argv(None, "check") == ["sh", "-s", "check"]
    assert firewall.root_argv("img:1") == [
        "docker", "run", "--rm", "-i", "--user", "0:0", "--net", "host",
        "--cap-add", "NET_ADMIN",
        "--mount", "type=bind,source=/,target=/host", "--entrypoint", "chroot", "img:1",
        "/host", "sh", "-s"]


def test_firewall_script_in_a_network_namespace(tmp_path: Path) -> None:
    """check → stale, apply → applied, again → current; a new rule set replaces the old
    one in one transaction (nothing left of it); remove leaves DOCKER-USER as it was."""
    topo = make_topology(tmp_path)
    other = make_topology(tmp_path / "other", lambda d: d["app"].update(port=9000))
    lb = topo.host("lb")
    q = shlex.quote
    script = "; ".join([
        "iptables -w -N DOCKER-USER",
        f"sh -c {q(firewall.apply_script(topo, lb))} sh check",
        f"sh -c {q(firewall.apply_script(topo, lb))} sh",
        f"sh -c {q(firewall.apply_script(topo, lb))} sh",
        f"sh -c {q(firewall.apply_script(other, other.host('app1')))} sh",
        "iptables -w -S SURVEYCTL-pesquisa",
        "iptables -w -S DOCKER-USER | wc -l",
        f"sh -c {q(firewall.remove_script(topo))}",
        "iptables -w -S DOCKER-USER | wc -l",
        "iptables -w -S SURVEYCTL-pesquisa 2>/dev/null || echo gone",
        f"sh -c {q(firewall.remove_script(topo))}",
    ])
    done = in_network_namespace(script)
    marker = firewall_rules(other, other.host("app1"))[-1][-3]
    match, next_match = (f"-p tcp -m conntrack --ctorigdst 192.168.56.11 --ctorigdstport "
                         f"{port} --ctdir ORIGINAL" for port in (9000, 9100))
    assert done.stdout.splitlines() == [
        "stale", "applied", "current", "applied",
        "-N SURVEYCTL-pesquisa",
        "-A SURVEYCTL-pesquisa -i docker0 -j RETURN",
        "-A SURVEYCTL-pesquisa -i br-+ -j RETURN",
        f"-A SURVEYCTL-pesquisa -s 192.168.56.10/32 {match} -j RETURN",
        f"-A SURVEYCTL-pesquisa {match} -j DROP",
        f"-A SURVEYCTL-pesquisa -s 192.168.56.10/32 {next_match} -j RETURN",
        f"-A SURVEYCTL-pesquisa {next_match} -j DROP",
        f'-A SURVEYCTL-pesquisa -m comment --comment "{marker}" -j RETURN',
        "2", "removed", "1", "gone", "absent",
    ], done.stderr


def test_build_argv(tmp_path: Path) -> None:
    def build(data) -> None:
        (tmp_path / "ctx").mkdir(exist_ok=True)
        (tmp_path / "ctx" / "Dockerfile.app").write_text("FROM scratch\n")
        data["app"]["build"] = {"context": "ctx", "dockerfile": "Dockerfile.app",
                                "args": {"B": "2", "A": "1"}}

    topo = make_topology(tmp_path, build)
    assert build_argv(topo) == [
        "docker", "build", "--tag", "pesquisa-app:latest",
        "--file", str(tmp_path / "ctx" / "Dockerfile.app"),
        "--build-arg", "A=1", "--build-arg", "B=2", str(tmp_path / "ctx")]


def test_transfer_for() -> None:
    on_host = {"app:1": ImageFact("sha256:old"), "nginx:1": None, "redis:1": ImageFact("r"),
               "vpn:1": None}
    moves = transfer_for(on_host, {"app:1": "sha256:new", "vpn:1": "sha256:v"})
    assert (moves.ship, moves.pull) == (["app:1", "vpn:1"], ["nginx:1"])
    assert moves.describe() == ["ship image app:1 (differs from the build)",
                                "ship image vpn:1 (missing)", "pull image nginx:1 (missing)"]
    same = transfer_for({"app:1": ImageFact("sha256:new")}, {"app:1": "sha256:new"})
    assert (same.ship, same.pull) == ([], [])
    assert transfer_for({"app:1": ImageFact("x")}, {"app:1": ""}).describe() == [
        "ship image app:1 (not built here yet)"]


def _facts(topo, host: str, containers: list[Observed], networks=("pesquisa",),
           volumes=("pesquisa-redis-data",), fw=firewall.CURRENT) -> HostFacts:
    specs = cluster_specs(topo, PROFILE)[host]
    images = {spec.image: ImageFact("sha256:" + spec.image) for spec in specs}
    return HostFacts(host, "/state", containers, images, set(networks), set(volumes), fw)


def _running(spec) -> Observed:
    live = {name: c.fingerprint for name, c in spec.config_files.items() if c.reload}
    return Observed(spec.name, "sha256:" + spec.image, spec.hash_label, "running", "healthy",
                    "pesquisa", spec.role, live)


def test_plan_host_nothing_to_do_then_a_missing_network(tmp_path: Path) -> None:
    topo = make_topology(tmp_path)
    specs = cluster_specs(topo, PROFILE)["lb"]
    done = plan_host(topo, specs, _facts(topo, "lb", [_running(s) for s in specs]))
    assert (done.changes, done.prep, [s.kind for s in done.steps]) == (0, [], ["keep"] * 3)
    assert done.lines() == [f"= keep {s.name} (up to date (running))" for s in specs]

    facts = _facts(topo, "lb", [_running(s) for s in specs], networks=(), volumes=(),
                   fw=firewall.STALE)
    broken = plan_host(topo, specs, facts, ["ship image x (missing)"])
    assert broken.prep == ["ship image x (missing)", "create network pesquisa",
                           "create volume pesquisa-redis-data",
                           "apply firewall chain SURVEYCTL-pesquisa"]
    assert [(s.container, s.kind, s.reason) for s in broken.steps] == [
        ("pesquisa-redis", "replace", "its network was missing"),
        ("pesquisa-vpn", "keep", "up to date (running)"),  # host network: unaffected
        ("pesquisa-nginx", "replace", "its network was missing"),
    ]
    assert (broken.create_network, broken.create_volumes, broken.apply_firewall) == (
        True, ["pesquisa-redis-data"], True)
    assert broken.changes == 6

    unread = _facts(topo, "lb", [_running(s) for s in specs], fw=firewall.UNKNOWN)
    checked_on_apply = plan_host(topo, specs, unread)  # `up`: the apply script tells
    assert (checked_on_apply.apply_firewall, checked_on_apply.prep,
            checked_on_apply.changes) == (True, [], 0)
    observed = _facts(topo, "lb", [_running(s) for s in specs], fw=firewall.APPLIED)
    applied = plan_host(topo, specs, observed)  # `up` applied it while observing
    assert (applied.apply_firewall, applied.prep, applied.changes) == (
        False, ["apply firewall chain SURVEYCTL-pesquisa"], 1)


def test_plan_host_created_not_started_is_started(tmp_path: Path) -> None:
    topo = make_topology(tmp_path)
    [app] = cluster_specs(topo, PROFILE)["app1"]
    half = dataclasses.replace(_running(app), state="created", health=None)
    result = plan_host(topo, [app], _facts(topo, "app1", [half]))
    assert result.lines() == ["> start pesquisa-app-1 (it is created)"]
    assert isinstance(result, HostPlan)


def test_check_argv_aims_at_the_candidate(tmp_path: Path) -> None:
    config = nginx_spec(make_topology(tmp_path)).config_files["nginx.conf"]
    assert _check_argv(config, "/etc/nginx/surveyctl/nginx.conf.new") == [
        "nginx", "-t", "-q", "-c", "/etc/nginx/surveyctl/nginx.conf.new"]


def test_logs_argv_and_matches() -> None:
    assert logs_argv("c", 20, True) == ["docker", "logs", "--tail", "20", "--follow", "c"]
    assert logs_argv("c", None, False) == ["docker", "logs", "c"]
    app = Observed("pesquisa-app-1", "i", None, "running", role="app")
    assert [matches(app, "pesquisa", s) for s in (None, "app", "app-1", "pesquisa-app-1",
                                                  "nginx")] == [True, True, True, True, False]


def test_ship_progress_draws_a_bar_on_a_terminal(monkeypatch) -> None:
    import io

    from rich.console import Console

    from survey_ctl import console
    from survey_ctl.cluster.images import ShipProgress

    screen = io.StringIO()
    monkeypatch.setattr(console, "err", Console(file=screen, force_terminal=True, width=100))
    with ShipProgress() as progress:
        advance = progress.task("app1", ["app:1"], 2_000_000)
        advance(1_000_000)
        advance(1_000_000)
    assert "app1: ship app:1" in screen.getvalue()
    assert "2.0/2.0 MB" in screen.getvalue()


def test_lock_argv() -> None:
    from survey_ctl.cluster.lock import _SCRIPT, lock_argv

    assert lock_argv("/home/deploy/.surveyctl/pesquisa", 5) == [
        "sh", "-c", _SCRIPT, "sh", "/home/deploy/.surveyctl/pesquisa", "5"]
    assert 'flock -w "$2" "$1/.lock"' in _SCRIPT
