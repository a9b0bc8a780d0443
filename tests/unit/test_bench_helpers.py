"""Pure helpers of the benchmarks: statistics, ordering, report sections, peer variables."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from survey_ctl.specs import cluster_specs
from tests.unit.test_specs import make_topology

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


bench = _load("bench_peers", BENCH / "bench_peers.py")
gen = _load("gen_peers", BENCH / "peers" / "gen_peers.py")
web = _load("web_load", BENCH / "web_load.py")


def test_summary_median_spread() -> None:
    s = bench.summary([3.0, 1.0, 2.0, 10.0, 4.0])
    assert s["median"] == 3.0 and s["min"] == 1.0 and s["max"] == 10.0 and s["n"] == 5
    assert s["iqr"] == pytest.approx(2.0)
    assert bench.summary([2.5])["iqr"] == 0


def test_rotation_gives_each_tool_the_first_slot() -> None:
    tools = ("surveyctl", "pyinfra", "ansible")
    firsts = [bench.rotation(tools, r)[0] for r in range(3)]
    assert firsts == ["surveyctl", "pyinfra", "ansible"]
    assert sorted(bench.rotation(tools, 4)) == sorted(tools)


def test_ratios_are_surveyctl_over_peer() -> None:
    got = bench.ratios({"converge": {"surveyctl": 2.0, "ansible": 8.0, "pyinfra": 4.0}})
    assert got == {"converge": {"ansible": 0.25, "pyinfra": 0.5}}


def test_lab_guard_matches_only_the_lab_subnet() -> None:
    assert bench.touches_lab(["172.31.56.10"])
    assert not bench.touches_lab(["172.31.59.1", "127.0.0.1", "lb.example"])


def test_replace_section_keeps_the_rest() -> None:
    text = "# B\n\nintro\n"
    once = bench.replace_section(text, "peers-lab", "first")
    assert once.startswith("# B\n\nintro\n\n<!-- peers-lab:begin -->\nfirst\n")
    twice = bench.replace_section(once + "tail\n", "peers-lab", "second")
    assert "first" not in twice and "second" in twice and twice.endswith("tail\n")


def test_table_lists_ratios() -> None:
    results = {"converge": {"surveyctl": [1.0, 1.0], "ansible": [4.0, 4.0]}}
    text = bench.table(results, ["surveyctl", "ansible"])
    assert "| converge | 1.00 s [1.00–1.00] (0.00) | 4.00 s" in text
    assert "0.25 (4.0× faster)" in text


def test_peer_model_matches_surveyctls_specs(tmp_path: Path) -> None:
    topo = make_topology(tmp_path)
    desired = cluster_specs(topo, SecretStr("client\n<key>vpn-secret</key>\n"))
    homes = {h.name: f"/home/{h.name}" for h in topo.hosts}
    model = gen.peer_model(topo, desired, homes, {}, {}, {})
    lb = model["hosts"]["lb"]
    names = [c["name"] for c in lb["containers"]]
    assert names == [s.name for s in desired["lb"]]
    nginx = next(c for c in lb["containers"] if c["name"].endswith("-nginx"))
    spec = next(s for s in desired["lb"] if s.name == nginx["name"])
    assert nginx["configs"][0]["content"] == spec.config_files["nginx.conf"].content
    assert nginx["configs"][0]["path"].startswith("/home/lb/.surveyctl/pesquisa/")
    assert nginx["spec_hash"] == spec.hash_label
    assert {"type": "bind", "source": "/home/lb/.surveyctl/pesquisa/pesquisa-nginx/config",
            "target": "/etc/nginx/surveyctl", "read_only": True} in nginx["mounts"]
    app = model["hosts"]["app1"]["containers"][0]
    assert app["env"]["SURVEY_DB_PASSWORD_FILE"] == "/run/secrets/survey_db_password"
    assert "SURVEY_DB_PASSWORD" not in app["env"]
    assert app["healthcheck"]["test"][0] == "CMD-SHELL"
    assert model["checks"]["vpn_host"] == "lb" and model["checks"]["lb_host"] == "lb"
    assert "iptables-restore" in lb["firewall_script"]


def test_inventories_use_the_topologys_ssh_settings(tmp_path: Path) -> None:
    topo = make_topology(tmp_path)
    ini = gen.ansible_inventory(topo, "/usr/bin/python3")
    assert "app2 ansible_host=192.168.56.12 ansible_port=2222 ansible_user=deploy" in ini
    assert "StrictHostKeyChecking=yes" in ini
    namespace: dict = {}
    exec(gen.pyinfra_inventory(topo), namespace)
    lb = dict(namespace["cluster"])["lb"]
    assert lb["ssh_hostname"] == "192.168.56.10" and lb["ssh_strict_host_key_checking"] == "yes"


def test_latency_percentiles() -> None:
    values = [i / 1000 for i in range(1, 101)]
    client = _load("http_load_client", BENCH / "http_load_client.py")
    assert client.percentile(values, 50) == pytest.approx(0.0505)
    assert client.percentile(values, 99) == pytest.approx(0.09901)
    assert client.percentile([], 99) == 0.0
    assert web.parse_wrk_latency("  50%   12.34ms\n  99%    1.20s\n") == {50: 0.01234, 99: 1.2}


def test_one_app_topology_keeps_the_first_app_host(tmp_path: Path) -> None:
    make_topology(tmp_path / "src")
    (tmp_path / "src" / ".env").write_text("X=1\n")
    made = web.one_app_topology(tmp_path / "src" / "surveyctl.yaml",
                                tmp_path / "one" / "surveyctl.yaml")
    import yaml

    hosts = yaml.safe_load(made.read_text())["hosts"]
    assert [h["name"] for h in hosts] == ["lb", "app1"]
    assert (tmp_path / "one" / ".env").resolve() == (tmp_path / "src" / ".env").resolve()


def test_web_targets_stay_local_or_in_the_lab_with_permission() -> None:
    assert web.allowed("http://127.0.0.1:8000", lab_ok=False)
    assert web.allowed("http://172.31.59.1:18080", lab_ok=False)
    assert not web.allowed("http://172.31.56.10", lab_ok=False)
    assert web.allowed("http://172.31.56.10", lab_ok=True)
    assert web.allowed("http://172.31.124.11:8000", lab_ok=True)
    assert not web.allowed("http://10.0.0.1", lab_ok=True)
    assert not web.allowed("http://example.com", lab_ok=True)


def test_profile_names_ssh_commands() -> None:
    prof = _load("profile_ops", BENCH / "profile_ops.py")
    assert prof.command_key("docker start pesquisa-app-1") == "docker start"
    assert prof.command_key("sh -c 'set -e; ids=$(docker ps --all)' sh x") == "sh -c (docker ps)"
