"""`surveyctl config validate` and `surveyctl init` through the real CLI boundary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from survey_ctl import cli
from survey_ctl.config import starter_topology
from tests.cli.topologies import (
    DELETE,
    SECRET_MARK,
    SECRETS,
    Workspace,
    changed,
    valid_topology,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Run:
    """What one CLI run gave."""

    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        """stdout and stderr together."""
        return self.stdout + self.stderr


def surveyctl(*args: str, env: dict[str, str] | None = None) -> Run:
    """Run `surveyctl ARGS` through `survey_ctl.cli.main` (the real error boundary)."""
    runner = CliRunner()
    environment = {"COLUMNS": "200", "SURVEYCTL_CONFIG": None, "SURVEYCTL_DEBUG": None,
                   **{name: None for name in SECRETS}, **(env or {})}
    argv = sys.argv
    with runner.isolation(env=environment) as (stdout, stderr, _):
        sys.argv = ["surveyctl", *args]
        try:
            cli.main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        finally:
            sys.argv = argv
        return Run(code, stdout.getvalue().decode(), stderr.getvalue().decode())


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    """A workspace holding every file `valid_topology()` refers to."""
    return Workspace.create(tmp_path / "cluster")


# ---------------------------------------------------------------- valid topologies


def test_validate_prints_hosts_roles_and_services(ws: Workspace) -> None:
    path = ws.write(valid_topology())
    run = surveyctl("config", "validate", "-c", str(path), env=SECRETS)
    assert run.code == 0, run.output
    for text in ("cluster pesquisa", "192.168.56.10", "deploy@22", "deploy@2222",
                 "lb, vpn, redis", "pesquisa-app:latest", "nginx:1.27-alpine", "least_conn",
                 "redis:7-alpine", "surveyctl/openvpn:latest", "survey on 10.8.0.1:3306 via vpn"):
        assert text in run.stdout
    assert "is valid" in run.stderr
    assert SECRET_MARK not in run.output


def test_validate_reads_the_config_from_the_environment(ws: Workspace) -> None:
    path = ws.write(valid_topology())
    run = surveyctl("config", "validate", env={**SECRETS, "SURVEYCTL_CONFIG": str(path)})
    assert run.code == 0, run.output


def test_validate_json_is_redacted(ws: Workspace) -> None:
    path = ws.write(valid_topology())
    run = surveyctl("config", "validate", "-c", str(path), "--json", env=SECRETS)
    assert run.code == 0, run.output
    document = json.loads(run.stdout)
    assert document["valid"] is True
    assert [h["name"] for h in document["topology"]["hosts"]] == ["lb", "app1", "app2"]
    assert document["topology"]["redis"]["password"] == "***"
    assert SECRET_MARK not in run.output


def test_validate_json_lists_problems_and_exits_2(ws: Workspace) -> None:
    path = ws.write(changed(valid_topology(), "lb.port", 0))
    run = surveyctl("config", "validate", "-c", str(path), "--json", env=SECRETS)
    assert run.code == 2
    assert json.loads(run.stdout) == {"valid": False, "file": str(path), "problems": [
        {"path": "lb.port", "message": "must be a port number in 1..65535"}]}


def test_typer_runner_on_the_app(ws: Workspace) -> None:
    """The plain CliRunner way also works for a valid file (no boundary needed)."""
    cli._register()
    path = ws.write(valid_topology())
    result = CliRunner().invoke(cli.app, ["config", "validate", "-c", str(path)], env=SECRETS)
    assert result.exit_code == 0, result.output
    assert "app1" in result.stdout


def test_missing_file_says_how_to_get_one(tmp_path: Path) -> None:
    run = surveyctl("config", "validate", "-c", str(tmp_path / "nope.yaml"))
    assert run.code == 2
    assert f"{tmp_path / 'nope.yaml'}: file not found" in run.stderr
    assert "surveyctl init" in run.stderr and "surveyctl lab up" in run.stderr
    assert "Traceback" not in run.output


# ---------------------------------------------------------------- init


def test_init_writes_the_example_and_refuses_to_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "surveyctl.yaml"
    run = surveyctl("init", str(target))
    assert run.code == 0, run.output
    assert target.read_text() == (REPO_ROOT / "config.example.yaml").read_text()
    assert "SURVEY_SECRET_KEY, SURVEY_REDIS_PASSWORD, SURVEY_DB_PASSWORD" in run.stderr

    target.write_text("mine\n")
    run = surveyctl("init", str(target))
    assert run.code == 2
    assert "already exists" in run.stderr and "--force" in run.stderr
    assert target.read_text() == "mine\n"

    assert surveyctl("init", str(target), "--force").code == 0
    assert target.read_text() == starter_topology()


def test_init_defaults_to_surveyctl_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert surveyctl("init").code == 0
    assert (tmp_path / "surveyctl.yaml").read_text() == starter_topology()


def test_init_then_validate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    for name in (".ssh/id_ed25519", ".ssh/known_hosts"):
        (home / name).parent.mkdir(parents=True, exist_ok=True)
        (home / name).write_text("x\n")
    monkeypatch.setenv("HOME", str(home))
    ws = Workspace.create(tmp_path / "cluster")
    path = ws.dir / "surveyctl.yaml"
    assert surveyctl("init", str(path)).code == 0
    run = surveyctl("config", "validate", "-c", str(path))
    assert run.code == 2 and "3 variables not set" in run.stderr
    (ws.dir / ".env").write_text("".join(f"{k}={v}\n" for k, v in SECRETS.items()))
    run = surveyctl("config", "validate", "-c", str(path))
    assert run.code == 0, run.output
    assert SECRET_MARK not in run.output


# ---------------------------------------------------------------- bad topologies


@dataclass
class Bad:
    """A bad topology: how it differs from the valid one and what the error must say."""

    id: str
    change: Callable[[dict[str, Any]], dict[str, Any] | str]
    expected: list[str]
    env: dict[str, str] = field(default_factory=lambda: dict(SECRETS))
    files: dict[str, str] = field(default_factory=dict)


def at(path: str, value: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A change setting one key path (dotted, list indexes as numbers)."""
    return lambda data: changed(data, path, value)


def renamed(path: str, new_key: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A change renaming the key at `path` (a typo), keeping its value."""
    def apply(data: dict[str, Any]) -> dict[str, Any]:
        parent, _, old_key = path.rpartition(".")
        node: Any = data
        for part in filter(None, parent.split(".")):
            node = node[int(part) if part.isdigit() else part]
        value = node[old_key]
        return changed(changed(data, path, DELETE), f"{parent}.{new_key}".lstrip("."), value)
    return apply


def text(raw: str) -> Callable[[dict[str, Any]], str]:
    """A change replacing the whole file by `raw`."""
    return lambda _data: raw


def both(*changes: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], Any]:
    """Several changes, one after the other."""
    def apply(data: dict[str, Any]) -> Any:
        for change in changes:
            data = change(data)
        return data
    return apply


def without(*names: str) -> dict[str, str]:
    """The test secrets without `names`."""
    return {k: v for k, v in SECRETS.items() if k not in names}


BAD = [
    Bad("missing-variables", lambda d: d, [
        "2 variables not set: SURVEY_REDIS_PASSWORD, SURVEY_DB_PASSWORD",
        "redis.password: variable SURVEY_REDIS_PASSWORD is not set",
        "database.password: variable SURVEY_DB_PASSWORD is not set"],
        env=without("SURVEY_REDIS_PASSWORD", "SURVEY_DB_PASSWORD")),
    Bad("malformed-reference", at("database.password", "${SURVEY DB}"),
        ["database.password: malformed variable reference"]),
    Bad("typo-key-with-hint", renamed("hosts.0.address", "adress"),
        ["hosts[0].adress: unknown key; did you mean 'address'?",
         "hosts[0].address: missing (required)"]),
    Bad("typo-top-level-key", renamed("cluster", "clustr"),
        ["clustr: unknown key; did you mean 'cluster'?", "cluster: missing (required)"]),
    Bad("typo-ssh-key", renamed("ssh.identity_file", "identityfile"),
        ["ssh.identityfile: unknown key; did you mean 'identity_file'?"]),
    Bad("typo-in-a-host-override", at("hosts.2.ssh", {"prot": 2222}),
        ["hosts[2].ssh.prot: unknown key; did you mean 'port'?"]),
    Bad("duplicate-host-names", at("hosts.2.name", "app1"),
        ["hosts[2].name: duplicate host name 'app1' (also hosts[1])"]),
    Bad("duplicate-address-and-port", at("hosts.1.address", "192.168.56.10"),
        ["hosts[1].address: 192.168.56.10 with SSH port 22 is already hosts[0] (lb)"]),
    Bad("two-lb-hosts", at("hosts.1.roles", ["app", "lb"]),
        ["hosts[1].roles: role 'lb' is already on hosts[0] (lb)"]),
    Bad("two-redis-hosts", at("hosts.2.roles", ["app", "redis"]),
        ["hosts[2].roles: role 'redis' is already on hosts[0] (lb)"]),
    Bad("no-app-host", both(at("hosts.1.roles", ["lb"]), at("hosts.2", DELETE),
                            at("hosts.0.roles", ["vpn", "redis"])),
        ["hosts: no host has the role 'app'"]),
    Bad("no-lb-host", at("hosts.0.roles", ["vpn", "redis"]), ["hosts: no host has the role 'lb'"]),
    Bad("vpn-role-missing-with-via-vpn", at("hosts.0.roles", ["lb", "redis"]),
        ["hosts: no host has the role 'vpn'", "database.via is vpn"]),
    Bad("vpn-section-missing-with-via-vpn", at("vpn", DELETE), ["vpn: missing"]),
    Bad("unknown-role", at("hosts.1.roles", ["ap"]),
        ["hosts[1].roles[0]: must be one of lb, app, redis, vpn; did you mean 'app'?"]),
    Bad("no-roles", at("hosts.1.roles", []), ["hosts[1].roles: must not be empty"]),
    Bad("no-hosts", at("hosts", []), ["hosts: must not be empty"]),
    Bad("role-twice", at("hosts.1.roles", ["app", "app"]),
        ["hosts[1].roles: listed more than once: app"]),
    Bad("port-zero", at("ssh.port", 0), ["ssh.port: must be a port number in 1..65535"]),
    Bad("port-70000", at("hosts.2.ssh.port", 70000),
        ["hosts[2].ssh.port: must be a port number in 1..65535"]),
    Bad("port-not-a-number", at("lb.port", "http"), ["lb.port: must be a whole number"]),
    Bad("port-boolean", at("redis.port", True), ["redis.port: must be a number, not true/false"]),
    Bad("port-fraction", at("database.port", 3306.5), ["database.port: must be a whole number"]),
    Bad("lb-and-redis-same-port-same-host", at("redis.port", 80), ["redis.port: port 80"]),
    Bad("missing-identity-file", at("ssh.identity_file", "keys/nope"),
        ["ssh.identity_file: file not found:", "keys/nope"]),
    Bad("identity-file-is-a-folder", at("hosts.1.ssh", {"identity_file": "keys"}),
        ["hosts[1].ssh.identity_file: not a file:"]),
    Bad("missing-known-hosts-under-strict", at("ssh.known_hosts", "keys/missing"),
        ["ssh.known_hosts: file not found:", "host_key_policy strict"]),
    Bad("missing-client-config", at("vpn.client_config", "vpn/other.ovpn"),
        ["vpn.client_config: file not found:", "vpn/other.ovpn"]),
    Bad("missing-dockerfile", at("app.build.dockerfile", "Dockerfile.nope"),
        ["app.build.dockerfile: file not found:"]),
    Bad("missing-build-context", at("app.build.context", "nowhere"),
        ["app.build.context: directory not found:"]),
    Bad("missing-migrations-folder", at("database.migrations", "sql"),
        ["database.migrations: directory not found:"]),
    Bad("bad-algorithm", at("lb.algorithm", "least-conn"),
        ["lb.algorithm: must be one of round_robin, least_conn, ip_hash; "
         "did you mean 'least_conn'?"]),
    Bad("host-key-policy-auto-add", at("ssh.host_key_policy", "auto-add"),
        ["ssh.host_key_policy: 'auto-add' is refused", "accept-new"]),
    Bad("host-key-policy-ignore-on-a-host", at("hosts.1.ssh", {"host_key_policy": "ignore"}),
        ["hosts[1].ssh.host_key_policy: 'ignore' is refused"]),
    Bad("host-key-policy-unknown", at("ssh.host_key_policy", "tofu"),
        ["ssh.host_key_policy: must be one of strict, accept-new"]),
    Bad("bad-via", at("database.via", "tunnel"),
        ["database.via: must be one of vpn, direct"]),
    Bad("hosts-not-a-list", at("hosts", {"lb": "192.168.56.10"}), ["hosts: must be a list"]),
    Bad("ssh-not-a-mapping", at("ssh", "deploy@22"), ["ssh: must be a mapping"]),
    Bad("roles-not-a-list", at("hosts.1.roles", "app"), ["hosts[1].roles: must be a list"]),
    Bad("replicas-not-a-number", at("app.replicas", "two"),
        ["app.replicas: must be a whole number"]),
    Bad("replicas-zero", at("app.replicas", 0), ["app.replicas:", "greater than or equal to 1"]),
    Bad("replicas-too-many", at("app.replicas", 1000),
        ["app.replicas:", "less than or equal to 32"]),
    Bad("connect-timeout-negative", at("ssh.connect_timeout", -1), ["ssh.connect_timeout:"]),
    Bad("healthcheck-path-without-slash", at("app.healthcheck.path", "healthz"),
        ["app.healthcheck.path: must be a URL path starting with '/'"]),
    Bad("bad-cluster-name", at("cluster", "Pesquisa Prod"),
        ["cluster: must be a Docker-safe name prefix"]),
    Bad("bad-host-name", at("hosts.1.name", "app 1"), ["hosts[1].name: must be up to 63"]),
    Bad("bad-address", at("hosts.1.address", "not an address!"),
        ["hosts[1].address: must be an IP address or a DNS name"]),
    Bad("bad-ip-like-address", at("database.host", "10.8.0.300"),
        ["database.host: must be an IP address or a DNS name"]),
    Bad("bad-image-reference", at("lb.image", "Nginx:latest!"), ["lb.image: must be an image"]),
    Bad("empty-image-tag", at("redis.image", "redis:"), ["redis.image: must be an image"]),
    Bad("bad-env-name", at("app.env.BAD-NAME", "x"), ["app.env.BAD-NAME: must be a variable name"]),
    Bad("missing-required-password", at("database.password", DELETE),
        ["database.password: missing (required)"]),
    Bad("empty-password-variable", lambda d: d, ["redis.password: must not be empty"],
        env={**SECRETS, "SURVEY_REDIS_PASSWORD": ""}),
    Bad("secret-of-wrong-type", at("redis.password", 98765432123),
        ["redis.password: must be a string"]),
    Bad("secret-in-a-field-that-rejects-it", at("lb.image", "${SURVEY_DB_PASSWORD}"),
        ["lb.image: must be an image reference"]),
    Bad("empty-file", text(""), ["the file is empty", "surveyctl init"]),
    Bad("comments-only-file", text("# nothing yet\n"), ["the file is empty"]),
    Bad("yaml-syntax-error", text("cluster: pesquisa\nhosts:\n  - name: lb\n   address: x\n"),
        ["YAML syntax error at line 4, column"]),
    Bad("yaml-tab-indent", text("cluster: pesquisa\nssh:\n\tuser: deploy\n"),
        ["YAML syntax error at line 3, column 1"]),
    Bad("duplicate-yaml-key", text("cluster: a\ncluster: b\n"),
        ["YAML error at line 2, column 1: duplicate key 'cluster' (first given on line 1)"]),
    Bad("top-level-list", text("- cluster: pesquisa\n"),
        ["the top level must be a mapping", "not a list"]),
    Bad("top-level-string", text("pesquisa\n"),
        ["the top level must be a mapping", "not a string"]),
    Bad("bad-dotenv-line", lambda d: d, [".env: line 1: expected NAME=value"],
        env={}, files={".env": "SURVEY TOPSECRET\n"}),
]


@pytest.mark.parametrize("case", BAD, ids=[case.id for case in BAD])
def test_bad_topology_exits_2_naming_the_key(ws: Workspace, case: Bad) -> None:
    for name, content in case.files.items():
        (ws.dir / name).write_text(content)
    path = ws.write(case.change(valid_topology()))
    run = surveyctl("config", "validate", "-c", str(path), env=case.env)
    assert run.code == 2, run.output
    assert run.stdout == ""
    assert run.stderr.startswith("error: ")
    assert f"{ws.dir}" in run.stderr  # names the file (or its .env)
    for expected in case.expected:
        assert expected in run.stderr, run.stderr
    assert "Traceback" not in run.output
    assert " should " not in run.stderr and "pydantic" not in run.stderr  # our own words
    assert SECRET_MARK not in run.output
    assert "98765432123" not in run.output


def test_at_least_25_distinct_bad_topologies() -> None:
    assert len({case.id for case in BAD}) == len(BAD) >= 25


def test_the_boundary_in_a_real_process(ws: Workspace) -> None:
    """`python -m survey_ctl`: exit 2, one error with a hint, no traceback, no secret."""
    path = ws.write(changed(valid_topology(), "hosts.0.adress", "x"))
    env = {**os.environ, **without("SURVEY_DB_PASSWORD")}
    env.pop("SURVEYCTL_DEBUG", None)
    proc = subprocess.run([sys.executable, "-m", "survey_ctl", "config", "validate", "-c",
                           str(path)], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 2
    assert "SURVEY_DB_PASSWORD" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert SECRET_MARK not in proc.stderr + proc.stdout
    assert "hint:" in proc.stderr

