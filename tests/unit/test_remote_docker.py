"""Specs as `docker create` argv and upload lists (pure), by exact equality."""

from __future__ import annotations

import io
import tarfile
import time
from pathlib import Path

import pytest
from pydantic import SecretStr

from survey_ctl.remote.docker import (
    create_argv,
    lookup_id,
    parse_user,
    secrets_tar,
    spec_files,
    state_dir,
)
from survey_ctl.specs import app_specs, nginx_spec, redis_spec, spec_hash, vpn_spec
from tests.unit.test_specs import make_topology

STATE = "/home/deploy/.surveyctl/pesquisa"


def test_state_dir() -> None:
    assert state_dir("/home/deploy", "pesquisa") == STATE


def test_app_argv_has_no_secret(tmp_path: Path) -> None:
    topo = make_topology(tmp_path)
    [spec] = app_specs(topo, topo.host("app1"))
    probe = ("python3 -c 'import sys, urllib.request; urllib.request.urlopen("
             "'\"'\"'http://127.0.0.1:8000/healthz'\"'\"', timeout=2); sys.exit(0)'")
    assert create_argv(spec, STATE) == [
        "docker", "create", "--name", "pesquisa-app-1",
        "--label", "surveyctl.cluster=pesquisa", "--label", "surveyctl.role=app",
        "--label", f"surveyctl.spec-hash={spec_hash(spec)}",
        "--restart", "unless-stopped",
        "--network", "pesquisa", "--network-alias", "app-1",
        "--env", "GUNICORN_BIND=0.0.0.0:8000",
        "--env", "SURVEY_DB_HOST=192.168.56.10",
        "--env", "SURVEY_DB_NAME=survey",
        "--env", "SURVEY_DB_PASSWORD_FILE=/run/secrets/survey_db_password",
        "--env", "SURVEY_DB_PORT=3306",
        "--env", "SURVEY_DB_USER=survey",
        "--env", "SURVEY_REDIS_HOST=192.168.56.10",
        "--env", "SURVEY_REDIS_PASSWORD_FILE=/run/secrets/survey_redis_password",
        "--env", "SURVEY_REDIS_PORT=6379",
        "--env", "SURVEY_SECRET_KEY_FILE=/run/secrets/survey_secret_key",
        "--env", "SURVEY_SERVED_BY=app1-app-1",
        "--env", "SURVEY_TRUST_PROXY_HOPS=1",
        "--publish", "192.168.56.11:8000:8000/tcp",
        "--health-cmd", probe, "--health-interval", "2s", "--health-timeout", "2s",
        "--health-retries", "15",
        "pesquisa-app:latest",
    ]
    joined = " ".join(create_argv(spec, STATE))
    assert "db-pw" not in joined and "redis-pw" not in joined and "k" * 32 not in joined
    assert spec_files(spec, STATE) == []  # secrets go in by `docker cp`, not the host's disk


def test_secrets_tar_members(tmp_path: Path) -> None:
    topo = make_topology(tmp_path)
    [spec] = app_specs(topo, topo.host("app1"))
    data = secrets_tar(spec, 10001, 10002)
    assert data == secrets_tar(spec, 10001, 10002)  # deterministic
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = [(m.name, m.uid, m.gid, m.mode, m.mtime, m.isfile(),
                    tar.extractfile(m).read()) for m in tar.getmembers()]
    assert members == [
        ("run/secrets/survey_db_password", 10001, 10002, 0o400, 0, True, b"db-pw"),
        ("run/secrets/survey_redis_password", 10001, 10002, 0o400, 0, True, b"redis-pw"),
        ("run/secrets/survey_secret_key", 10001, 10002, 0o400, 0, True, b"k" * 32),
    ]
    assert secrets_tar(nginx_spec(topo), 0, 0) == secrets_tar(nginx_spec(topo), 5, 5)


def test_parse_user_and_lookup_id() -> None:
    assert parse_user("") == ("0", None)
    assert parse_user("10001:10001") == ("10001", "10001")
    assert parse_user("redis") == ("redis", None)
    assert parse_user("redis:adm") == ("redis", "adm")
    passwd = "root:x:0:0:root:/root:/bin/bash\nredis:x:100:101::/var/lib/redis:/bin/false\n"
    assert lookup_id(passwd, "redis") == (100, 101)
    assert lookup_id(passwd, "nobody") is None
    assert lookup_id("adm:x:4:syslog\n", "adm") == (4, 4)


def test_redis_nginx_and_vpn_argv(tmp_path: Path) -> None:
    topo = make_topology(tmp_path)
    redis = create_argv(redis_spec(topo), STATE)
    assert "--user" not in redis  # the image's own user; secrets are chowned to it
    assert redis[redis.index("--entrypoint"):redis.index("--publish")] == [
        "--entrypoint", "redis-server"]
    assert redis[-2:] == ["redis:7-alpine", "/run/secrets/redis.conf"]
    assert "type=volume,source=pesquisa-redis-data,target=/data" in redis

    nginx = nginx_spec(topo)
    argv = create_argv(nginx, STATE)
    assert argv[argv.index("--publish"):argv.index("--health-cmd")] == [
        "--publish", "0.0.0.0:80:80/tcp", "--publish", "192.168.56.10:3306:3306/tcp",
        "--mount", f"type=bind,source={STATE}/pesquisa-nginx/config,"
                   "target=/etc/nginx/surveyctl,readonly",
    ]
    assert argv[-6:] == ["nginx:1.27-alpine", "nginx", "-c", "/etc/nginx/surveyctl/nginx.conf",
                         "-g", "daemon off;"]
    [conf] = spec_files(nginx, STATE)
    assert (conf.path, conf.mode) == (f"{STATE}/pesquisa-nginx/config/nginx.conf", 0o644)
    assert conf.data == nginx.config_files["nginx.conf"].content.encode()

    spec = vpn_spec(topo, SecretStr("client\n"))
    vpn = create_argv(spec, STATE)
    assert vpn == [
        "docker", "create", "--name", "pesquisa-vpn",
        "--label", "surveyctl.cluster=pesquisa", "--label", "surveyctl.role=vpn",
        "--label", f"surveyctl.spec-hash={spec_hash(spec)}",
        "--restart", "unless-stopped", "--network", "host",
        "--cap-add", "NET_ADMIN", "--device", "/dev/net/tun",
        "--health-cmd", 'test -n "$(ip link show dev tun0 up)"', "--health-interval", "2s",
        "--health-timeout", "3s", "--health-retries", "15", "--health-start-period", "10s",
        "surveyctl/openvpn:latest", "openvpn", "--config", "/etc/openvpn/client/client.ovpn",
        "--dev", "tun0",
    ]


def test_config_hashes_read_the_host(tmp_path: Path) -> None:
    import hashlib

    from survey_ctl.remote.docker import config_hashes
    from survey_ctl.remote.ssh import connect
    from tests.sshd import SSHServer, ssh_host

    topo = make_topology(tmp_path / "topo")
    nginx, redis = nginx_spec(topo), redis_spec(topo)
    state = str(tmp_path / "state")
    server = SSHServer(tmp_path / "sshd").start()
    try:
        known = tmp_path / "known_hosts"
        known.write_text(server.known_hosts_line())
        with connect(ssh_host(server, known)) as conn:
            assert config_hashes(conn, [nginx, redis], state) == {
                "pesquisa-nginx": {}, "pesquisa-redis": {}}
            for file in spec_files(nginx, state):
                conn.put_file(file.path, file.data, file.mode)
            expected = nginx.config_files["nginx.conf"].fingerprint
            assert expected == hashlib.sha256(spec_files(nginx, state)[0].data).hexdigest()
            assert config_hashes(conn, [nginx, redis], state) == {
                "pesquisa-nginx": {"nginx.conf": expected}, "pesquisa-redis": {}}
    finally:
        server.stop()


def _docker_and_busybox() -> bool:
    import shutil
    import subprocess

    docker, busybox = shutil.which("docker"), shutil.which("busybox")
    return bool(docker and busybox) and subprocess.run(
        [docker, "info"], capture_output=True, timeout=20).returncode == 0


@pytest.mark.skipif(not _docker_and_busybox(), reason="needs a Docker Engine and busybox-static")
@pytest.mark.timeout(120)
def test_spec_runs_on_a_real_engine_over_ssh(tmp_path: Path) -> None:
    """create_argv + spec_files + copy_secrets on a real engine: env verbatim, secret
    readable by the (non-root) container user only, live config readable, health check
    healthy, and the plan afterwards is "keep"."""
    import dataclasses
    import shutil
    import subprocess

    from survey_ctl.plan import plan
    from survey_ctl.remote.docker import (
        config_hashes,
        copy_secrets,
        list_containers,
        upload_config_files,
    )
    from survey_ctl.remote.ssh import connect
    from survey_ctl.specs import (
        LABEL_CLUSTER,
        LABEL_ROLE,
        ConfigFile,
        ContainerSpec,
        Healthcheck,
        Mount,
        PortBinding,
        SecretFile,
        with_hash,
    )
    from tests.services import free_port
    from tests.sshd import SSHServer, ssh_host

    image = "surveyctl-test/busybox:1"
    rootfs = tmp_path / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    shutil.copy(shutil.which("busybox"), rootfs / "bin" / "busybox")
    for tool in ("sh", "cat", "sleep", "test", "stat"):
        (rootfs / "bin" / tool).symlink_to("busybox")
    tar = subprocess.run(["tar", "-C", str(rootfs), "-c", "."], capture_output=True, check=True)
    subprocess.run(["docker", "import", "-c", "ENV PATH=/bin", "-", image], input=tar.stdout,
                   capture_output=True, check=True)
    cluster = f"sshtest{free_port()}"
    spec = with_hash(ContainerSpec(
        name=f"{cluster}-app-1", image=image,
        command=("sh", "-c", "while true; do sleep 1; done"),
        env={"GREETING": "hello world; $HOME"},
        secret_files={"pw": SecretFile("/run/secrets/pw", SecretStr("s3cret"))},
        config_files={"app.conf": ConfigFile("/etc/app/app.conf", "x=1\n", reload=("true",))},
        ports=(PortBinding("127.0.0.1", free_port(), 8000),),
        volumes=(Mount(f"{cluster}-data", "/data"),),
        network=cluster, network_aliases=("app-1",), user="4242:4343",
        healthcheck=Healthcheck(("CMD", "test", "-f", "/run/secrets/pw"), 1.0, 1.0, 3),
        labels={LABEL_CLUSTER: cluster, LABEL_ROLE: "app"},
    ))
    state = str(tmp_path / "state")
    server = SSHServer(tmp_path / "sshd").start()
    known = tmp_path / "known_hosts"
    known.write_text(server.known_hosts_line())
    conn = connect(ssh_host(server, known))
    try:
        conn.docker(["network", "create", cluster])
        upload_config_files(conn, spec, state)
        assert conn.run(create_argv(spec, state)).ok
        copy_secrets(conn, spec, "4242:4343")
        conn.docker(["start", spec.name])
        deadline = time.monotonic() + 30
        while (seen := list_containers(conn, cluster))[0].health != "healthy":
            assert time.monotonic() < deadline, seen
            time.sleep(0.3)

        def inside(*argv: str) -> str:
            return conn.docker(["exec", spec.name, *argv]).text

        assert inside("cat", "/run/secrets/pw") == "s3cret"
        assert inside("stat", "-c", "%u:%g %a", "/run/secrets/pw") == "4242:4343 400\n"
        assert "s3cret" not in conn.docker(["inspect", spec.name]).text
        assert inside("sh", "-c", 'echo "$GREETING"') == "hello world; $HOME\n"
        assert inside("cat", "/etc/app/app.conf") == "x=1\n"
        live = config_hashes(conn, [spec], state)[spec.name]
        observed = [dataclasses.replace(o, config_hashes=live) for o in seen]
        assert [s.kind for s in plan({"h1": [spec]}, {"h1": observed})] == ["keep"]
        conn.put_file(spec_files(spec, state)[0].path, b"x=2\n", 0o644)
        assert inside("cat", "/etc/app/app.conf") == "x=2\n"  # the folder mount sees renames
    finally:
        conn.docker(["rm", "-f", spec.name], check=False)
        conn.docker(["network", "rm", cluster], check=False)
        conn.docker(["volume", "rm", f"{cluster}-data"], check=False)
        conn.docker(["image", "rm", image], check=False)
        conn.close()
        server.stop()
