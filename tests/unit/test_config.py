"""The topology model and loader: good topologies, interpolation, .env, SSH merging, paths."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel, SecretStr

from survey_ctl.config import (
    ROLES,
    SSHSettings,
    Topology,
    TopologyError,
    load_topology,
    read_dotenv,
    starter_topology,
    variables_in,
)
from survey_ctl.config.loader import key_path
from survey_ctl.errors import EXIT_USAGE, ConfigError, UsageError
from tests.cli.topologies import (
    DELETE,
    SECRET_MARK,
    SECRETS,
    Workspace,
    changed,
    valid_topology,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    """A workspace holding every file `valid_topology()` refers to."""
    return Workspace.create(tmp_path / "cluster")


def load(ws: Workspace, data: dict | str, environ: dict[str, str] | None = None) -> Topology:
    """Write `data` into the workspace and load it with the test secrets."""
    return load_topology(ws.write(data), SECRETS if environ is None else environ)


# ---------------------------------------------------------------- the whole topology


def test_valid_topology_gives_hosts_and_roles(ws: Workspace) -> None:
    topo = load(ws, valid_topology())
    assert topo.cluster == "pesquisa"
    assert [h.name for h in topo.hosts] == ["lb", "app1", "app2"]
    assert topo.lb_host.name == topo.redis_host.name == "lb"
    assert topo.vpn_host is not None and topo.vpn_host.name == "lb"
    assert [h.name for h in topo.app_hosts] == ["app1", "app2"]
    assert topo.hosts_with_role("app") == topo.app_hosts
    assert topo.host("app2").address == "192.168.56.12"
    assert topo.host("lb").roles == ("lb", "vpn", "redis")
    assert topo.base_dir == ws.dir
    assert topo.path == ws.dir / "surveyctl.yaml"


def test_unknown_host_name_is_a_usage_error_listing_hosts(ws: Workspace) -> None:
    topo = load(ws, valid_topology())
    with pytest.raises(UsageError) as caught:
        topo.host("app9")
    assert caught.value.exit_code == EXIT_USAGE
    assert "app9" in caught.value.message
    assert caught.value.hint == "hosts: lb, app1, app2"


def test_defaults_fill_optional_sections_and_keys(ws: Workspace) -> None:
    data = valid_topology()
    for key in ("lb", "app.healthcheck", "ssh.connect_timeout", "ssh.host_key_policy",
                "database.via"):
        data = changed(data, key, DELETE)
    topo = load(ws, data)
    assert (topo.lb.image, topo.lb.port, topo.lb.algorithm) == ("nginx:1.27-alpine", 80,
                                                               "round_robin")
    assert (topo.redis.image, topo.redis.port) == ("redis:7-alpine", 6379)
    assert topo.app.healthcheck.model_dump() == {"path": "/healthz", "interval": 2.0,
                                                  "timeout": 2.0, "retries": 15}
    assert (topo.app.replicas, topo.app.port) == (1, 8000)
    assert topo.ssh.connect_timeout == 10 and topo.ssh.host_key_policy == "strict"
    assert (topo.database.port, topo.database.via) == (3306, "vpn")
    assert (topo.vpn.image, topo.vpn.interface) == ("surveyctl/openvpn:latest", "tun0")


def test_an_empty_key_takes_its_default(ws: Workspace) -> None:
    data = changed(changed(valid_topology(), "lb", None), "hosts.2.ssh.port", None)
    topo = load(ws, data)
    assert topo.lb.port == 80
    assert topo.host("app2").ssh.port == 22


def test_via_direct_needs_no_vpn(ws: Workspace) -> None:
    data = changed(changed(valid_topology(), "database.via", "direct"), "vpn", DELETE)
    data = changed(data, "hosts.0.roles", ["lb", "redis"])
    topo = load(ws, data)
    assert topo.vpn_host is None
    assert topo.vpn is None


def test_via_direct_ignores_a_vpn_role(ws: Workspace) -> None:
    topo = load(ws, changed(valid_topology(), "database.via", "direct"))
    assert topo.vpn_host is None


def test_one_host_may_hold_every_role(ws: Workspace) -> None:
    data = changed(valid_topology(), "hosts", [
        {"name": "solo", "address": "solo.example.com", "roles": list(ROLES)}
    ])
    topo = load(ws, data)
    assert topo.lb_host is topo.redis_host is topo.vpn_host is topo.app_hosts[0]


def test_same_address_with_another_ssh_port_is_another_host(ws: Workspace) -> None:
    data = changed(valid_topology(), "hosts.2.address", "192.168.56.11")
    topo = load(ws, data)  # app1 on :22, app2 on :2222
    assert {(h.address, h.ssh.port) for h in topo.app_hosts} == {
        ("192.168.56.11", 22), ("192.168.56.11", 2222)}


def test_numbers_may_come_from_variables(ws: Workspace) -> None:
    data = changed(valid_topology(), "lb.port", "${LB_PORT}")
    topo = load(ws, data, {**SECRETS, "LB_PORT": "8080"})
    assert topo.lb.port == 8080


def test_env_and_build_args_accept_numbers_as_strings(ws: Workspace) -> None:
    data = changed(valid_topology(), "app.env.WORKERS", 4)
    data = changed(data, "app.build.args.PIP_RETRIES", 5)
    topo = load(ws, data)
    assert topo.app.env["WORKERS"].get_secret_value() == "4"
    assert topo.app.build is not None and topo.app.build.args["PIP_RETRIES"] == "5"


@pytest.mark.parametrize("image", [
    "nginx", "nginx:1.27-alpine", "redis:7-alpine", "surveyctl/openvpn:latest",
    "registry.example.com:5000/team/app:v1.2", "localhost/app", "ghcr.io/a_b/c-d__e.f:t",
    "app@sha256:" + "ab" * 32, "app:1@sha256:" + "0f" * 32,
])
def test_good_image_references(ws: Workspace, image: str) -> None:
    assert load(ws, changed(valid_topology(), "lb.image", image)).lb.image == image


@pytest.mark.parametrize("address", ["10.0.0.1", "::1", "fd00::10", "db", "db.example.com",
                                     "my-host.internal."])
def test_good_addresses(ws: Workspace, address: str) -> None:
    assert load(ws, changed(valid_topology(), "database.host", address)).database.host == address


# ---------------------------------------------------------------- ssh settings


def test_host_ssh_is_defaults_merged_with_override(ws: Workspace) -> None:
    (ws.dir / "keys/other").write_text("key\n")
    data = changed(valid_topology(), "hosts.2.ssh", {
        "port": 2222, "user": "admin", "identity_file": "keys/other",
        "host_key_policy": "accept-new", "known_hosts": "keys/app2_known_hosts",
    })
    topo = load(ws, data)
    app1, app2 = topo.host("app1").ssh, topo.host("app2").ssh
    assert isinstance(app2, SSHSettings)
    assert app1 == topo.ssh
    assert app1.model_dump() == {
        "user": "deploy", "port": 22, "identity_file": ws.dir / "keys/id_ed25519",
        "known_hosts": ws.dir / "keys/known_hosts", "host_key_policy": "strict",
        "connect_timeout": 10.0,
    }
    assert app2.model_dump() == {
        "user": "admin", "port": 2222, "identity_file": ws.dir / "keys/other",
        "known_hosts": ws.dir / "keys/app2_known_hosts", "host_key_policy": "accept-new",
        "connect_timeout": 10.0,
    }


def test_ssh_defaults_known_hosts_in_home(ws: Workspace, monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh/known_hosts").write_text("")
    monkeypatch.setenv("HOME", str(home))
    topo = load(ws, changed(valid_topology(), "ssh.known_hosts", DELETE))
    assert topo.ssh.known_hosts == home / ".ssh/known_hosts"
    assert topo.ssh.port == 22


def test_accept_new_allows_a_known_hosts_file_not_yet_there(ws: Workspace) -> None:
    data = changed(valid_topology(), "ssh.host_key_policy", "accept-new")
    data = changed(data, "ssh.known_hosts", "state/known_hosts")
    topo = load(ws, data)
    assert topo.host("lb").ssh.known_hosts == ws.dir / "state/known_hosts"


def test_strict_on_one_host_needs_its_known_hosts(ws: Workspace) -> None:
    data = changed(valid_topology(), "ssh.host_key_policy", "accept-new")
    data = changed(data, "ssh.known_hosts", "state/known_hosts")
    data = changed(data, "hosts.1.ssh", {"host_key_policy": "strict"})
    with pytest.raises(TopologyError) as caught:
        load(ws, data)
    assert [p.path for p in caught.value.problems] == ["ssh.known_hosts"]
    assert "host app1" in caught.value.message


def test_host_ssh_is_unknown_outside_a_topology() -> None:
    from survey_ctl.config import Host

    host = Host.model_validate({"name": "a", "address": "10.0.0.1", "roles": ["app"]})
    with pytest.raises(RuntimeError):
        _ = host.ssh
    settings = SSHSettings.model_validate({"user": "u", "identity_file": __file__})
    assert host.with_ssh(settings).ssh is settings


# ---------------------------------------------------------------- paths


def test_relative_paths_follow_the_topology_folder_not_cwd(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    data = changed(valid_topology(), "database.migrations", "db/migrations")
    (ws.dir / "db/migrations").mkdir(parents=True)
    topo = load_topology(Path("..") / "cluster" / ws.write(data).name, SECRETS)
    assert topo.base_dir == ws.dir
    assert topo.ssh.identity_file == ws.dir / "keys/id_ed25519"
    assert topo.vpn is not None and topo.vpn.client_config == ws.dir / "vpn/client.ovpn"
    assert topo.app.build is not None
    assert topo.app.build.context == ws.dir
    assert topo.app.build.dockerfile == ws.dir / "stacks/app/Dockerfile"
    assert topo.migrations_dir == ws.dir / "db/migrations"


def test_dockerfile_is_relative_to_the_build_context(ws: Workspace) -> None:
    data = changed(valid_topology(), "app.build",
                   {"context": "stacks", "dockerfile": "app/Dockerfile"})
    topo = load(ws, data)
    assert topo.app.build is not None
    assert topo.app.build.dockerfile == ws.dir / "stacks/app/Dockerfile"
    assert topo.migrations_dir == ws.dir / "stacks/app/migrations"


def test_tilde_and_absolute_paths(ws: Workspace, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh/id_ed25519").write_text("key\n")
    monkeypatch.setenv("HOME", str(home))
    data = changed(valid_topology(), "ssh.identity_file", "~/.ssh/id_ed25519")
    data = changed(data, "vpn.client_config", str(ws.dir / "vpn/client.ovpn"))
    topo = load(ws, data)
    assert topo.ssh.identity_file == home / ".ssh/id_ed25519"
    assert topo.vpn is not None and topo.vpn.client_config == ws.dir / "vpn/client.ovpn"


def test_no_build_and_no_migrations_means_no_migrations_dir(ws: Workspace) -> None:
    assert load(ws, changed(valid_topology(), "app.build", DELETE)).migrations_dir is None


# ---------------------------------------------------------------- variables and .env


def test_environment_wins_over_dotenv(ws: Workspace) -> None:
    (ws.dir / ".env").write_text(
        "# secrets of this cluster\n"
        "export SURVEY_SECRET_KEY='from-dotenv'\n"
        'SURVEY_REDIS_PASSWORD="redis from dotenv"\n'
        "SURVEY_DB_PASSWORD=db-from-dotenv # trailing comment\n"
        "\n"
    )
    topo = load(ws, valid_topology(), {"SURVEY_SECRET_KEY": "from-environment"})
    assert topo.app.env["SURVEY_SECRET_KEY"].get_secret_value() == "from-environment"
    assert topo.redis.password.get_secret_value() == "redis from dotenv"
    assert topo.database.password.get_secret_value() == "db-from-dotenv"


def test_dotenv_is_read_beside_the_topology_not_in_cwd(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("SURVEY_DB_PASSWORD=wrong-folder\n")
    monkeypatch.chdir(tmp_path)
    (ws.dir / ".env").write_text("SURVEY_DB_PASSWORD=right-folder\n")
    environ = {k: v for k, v in SECRETS.items() if k != "SURVEY_DB_PASSWORD"}
    topo = load(ws, valid_topology(), environ)
    assert topo.database.password.get_secret_value() == "right-folder"


def test_process_environment_is_the_default(ws: Workspace,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    topo = load_topology(ws.write(valid_topology()))
    assert topo.redis.password.get_secret_value() == SECRETS["SURVEY_REDIS_PASSWORD"]


def test_several_references_and_the_escape_in_one_value(ws: Workspace) -> None:
    data = changed(valid_topology(), "app.env.GREETING", "${A}-${B} costs $${PRICE} $5")
    topo = load(ws, data, {**SECRETS, "A": "x", "B": "y"})
    assert topo.app.env["GREETING"].get_secret_value() == "x-y costs ${PRICE} $5"


def test_every_missing_variable_is_named_at_once(ws: Workspace) -> None:
    data = changed(valid_topology(), "app.env.OTHER", "${SURVEY_DB_PASSWORD}")
    with pytest.raises(TopologyError) as caught:
        load(ws, data, {"SURVEY_SECRET_KEY": "x"})
    error = caught.value
    assert isinstance(error, ConfigError) and error.exit_code == EXIT_USAGE
    assert error.message.splitlines()[0] == (
        f"{ws.dir / 'surveyctl.yaml'}: 2 variables not set: "
        "SURVEY_DB_PASSWORD, SURVEY_REDIS_PASSWORD:"
    )
    assert [str(p) for p in error.problems] == [  # by variable, in order of first use
        "app.env.OTHER: variable SURVEY_DB_PASSWORD is not set",
        "database.password: variable SURVEY_DB_PASSWORD is not set",
        "redis.password: variable SURVEY_REDIS_PASSWORD is not set",
    ]
    assert error.hint is not None and str(ws.dir / ".env") in error.hint


def test_read_dotenv_without_a_file_is_empty(tmp_path: Path) -> None:
    assert read_dotenv(tmp_path / ".env") == {}


def test_bad_dotenv_lines_are_named_without_their_content(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("GOOD=1\nthis is TOPSECRET\n2BAD=x\n")
    with pytest.raises(TopologyError) as caught:
        read_dotenv(tmp_path / ".env")
    assert [str(p) for p in caught.value.problems] == [
        "line 2: expected NAME=value", "line 3: expected NAME=value"]
    assert SECRET_MARK not in caught.value.message


def test_variables_in_reads_values_not_comments() -> None:
    text = "# ${NOT_THIS}\na: ${FIRST}\nb: [x, '${SECOND}-${FIRST}', '$${ESCAPED}']\n"
    assert variables_in(text) == ["FIRST", "SECOND"]


# ---------------------------------------------------------------- secrets


def test_secrets_are_secret_and_redacted(ws: Workspace) -> None:
    topo = load(ws, valid_topology())
    assert isinstance(topo.redis.password, SecretStr)
    assert topo.database.password.get_secret_value() == SECRETS["SURVEY_DB_PASSWORD"]
    redacted = topo.redacted_dict()
    text = json.dumps(redacted)
    assert SECRET_MARK not in text
    assert SECRET_MARK not in repr(topo) and SECRET_MARK not in str(topo.model_dump())
    assert redacted["redis"]["password"] == redacted["database"]["password"] == "***"
    assert redacted["app"]["env"] == {"SURVEY_SECRET_KEY": "***"}
    assert redacted["hosts"][2] == {
        "name": "app2", "address": "192.168.56.12", "roles": ["app"],
        "ssh": {"user": "deploy", "port": 2222, "identity_file": str(ws.dir / "keys/id_ed25519"),
                "known_hosts": str(ws.dir / "keys/known_hosts"), "host_key_policy": "strict",
                "connect_timeout": 10.0},
    }
    assert redacted["database"]["migrations"] == str(ws.dir / "app/migrations")
    assert redacted["base_dir"] == str(ws.dir)


# ---------------------------------------------------------------- messages


def test_several_problems_are_listed_together(ws: Workspace) -> None:
    data = changed(valid_topology(), "hosts.0.adress", "x")
    data = changed(data, "lb.port", 0)
    data = changed(data, "app.replicas", "two")
    with pytest.raises(TopologyError) as caught:
        load(ws, data)
    lines = caught.value.message.splitlines()
    assert lines[0] == f"{ws.dir / 'surveyctl.yaml'}: 3 problems:"
    assert sorted(lines[1:]) == sorted([
        "  hosts[0].adress: unknown key; did you mean 'address'?",
        "  app.replicas: must be a whole number",
        "  lb.port: must be a port number in 1..65535",
    ])


def test_one_problem_is_one_line(ws: Workspace) -> None:
    with pytest.raises(TopologyError) as caught:
        load(ws, changed(valid_topology(), "lb.algorithm", "leastconn"))
    assert caught.value.message == (
        f"{ws.dir / 'surveyctl.yaml'}: lb.algorithm: must be one of round_robin, least_conn, "
        "ip_hash; did you mean 'least_conn'?"
    )


def test_unknown_key_without_a_close_name_lists_the_allowed_ones(ws: Workspace) -> None:
    with pytest.raises(TopologyError) as caught:
        load(ws, changed(valid_topology(), "redis.zzz", 1))
    assert str(caught.value.problems[0]) == (
        "redis.zzz: unknown key; allowed here: image, port, password")


def test_yaml_errors_name_line_and_column(ws: Workspace) -> None:
    with pytest.raises(TopologyError) as caught:
        load(ws, "cluster: pesquisa\nssh:\n  user: deploy\n port: 22\n")
    assert "YAML syntax error at line 4, column 2" in caught.value.message


def test_duplicate_yaml_keys_are_refused(ws: Workspace) -> None:
    with pytest.raises(TopologyError) as caught:
        load(ws, "cluster: a\nssh: {}\ncluster: b\n")
    assert "duplicate key 'cluster' (first given on line 1)" in caught.value.message
    assert "line 3" in caught.value.message


def test_yaml_anchors_and_merge_keys_still_work(ws: Workspace) -> None:
    text = yaml.safe_dump(changed(valid_topology(), "hosts", DELETE), sort_keys=False) + (
        "hosts:\n"
        "  - {name: lb, address: 192.168.56.10, roles: [lb, vpn, redis]}\n"
        "  - &app {name: app1, address: 192.168.56.11, roles: [app]}\n"
        "  - {<<: *app, name: app2, address: 192.168.56.12}\n"
    )
    assert [h.roles for h in load(ws, text).app_hosts] == [("app",), ("app",)]


def test_key_path_format() -> None:
    assert key_path(("hosts", 2, "ssh", "port")) == "hosts[2].ssh.port"
    assert key_path(("app", "env", "bad-name", "[key]")) == "app.env.bad-name"
    assert key_path(()) == ""


# ---------------------------------------------------------------- the example file


def test_config_example_is_the_starter_template() -> None:
    assert (REPO_ROOT / "config.example.yaml").read_text() == starter_topology(), (
        "config.example.yaml differs from survey_ctl/templates/topology.yaml: edit the "
        "template, then run `surveyctl init config.example.yaml --force`"
    )


def test_config_example_is_valid_when_its_files_and_variables_exist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    ws = Workspace.create(tmp_path / "cluster")
    for name in (".ssh/id_ed25519", ".ssh/known_hosts"):
        (home / name).parent.mkdir(parents=True, exist_ok=True)
        (home / name).write_text("x\n")
    path = ws.dir / "surveyctl.yaml"
    shutil.copy(REPO_ROOT / "config.example.yaml", path)
    topo = load_topology(path, SECRETS)
    assert topo.host("app2").ssh.port == 2222
    assert variables_in(starter_topology()) == list(SECRETS)


def _keys(model: type[BaseModel]) -> set[str]:
    keys = set()
    for name, field in model.model_fields.items():
        keys.add(field.alias or name)
        for arg in (field.annotation, *getattr(field.annotation, "__args__", ())):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                keys |= _keys(arg)
    return keys


def test_config_example_documents_every_key() -> None:
    text = starter_topology()
    undocumented = sorted(k for k in _keys(Topology) if f"{k}:" not in text)
    assert undocumented == []
