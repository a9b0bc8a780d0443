"""A benchmark target on this machine alone, for when the lab is busy.

One real sshd (tests/sshd.py) plays the host `solo` (lb, redis, app: one Docker Engine
can hold one host's share of a cluster, since `up` removes the cluster's containers a
host should not have), driving this machine's own Docker Engine. It listens on
127.0.0.1 and on the gateway address of a private bridge network made here (`surveyctl-bench-local`,
172.31.59.0/24): containers cannot reach 127.0.0.1 of the machine, but they reach
that gateway, which is this machine's own address (traffic never leaves the box).
MariaDB (tests/services.py) listens on loopback; a small TCP relay offers it on the
gateway address. The database is `via: direct` (there is no OpenVPN server here).

    .venv/bin/python benchmarks/local_target.py up      # writes benchmarks/.local-target/
    .venv/bin/python benchmarks/local_target.py down    # after `surveyctl down -c …`

`up` stays in the foreground (Ctrl-C or SIGTERM stops the servers).
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

NETWORK = "surveyctl-bench-local"
SUBNET = "172.31.59.0/24"
ADDRESS = "172.31.59.1"
DB_PORT = 13306
CLUSTER = "benchloop"
DIR = REPO / "benchmarks" / ".local-target"


def topology_text(dir_: Path, ports: dict[str, int], app_image: str) -> str:
    """The target's topology (pure): one host with lb, redis and app roles, DB direct."""
    hosts = "".join(
        f"- name: {name}\n  address: {ADDRESS}\n  ssh: {{port: {port}}}\n"
        "  roles: [lb, redis, app]\n" for name, port in ports.items())
    return f"""# Made by benchmarks/local_target.py: this machine's own sshd + Docker Engine.
cluster: {CLUSTER}
ssh:
  user: root
  identity_file: {dir_}/client_ed25519
  known_hosts: {dir_}/known_hosts
  host_key_policy: strict
  connect_timeout: 10
hosts:
{hosts}app:
  image: {app_image}
  replicas: 1
  port: 18000
  env:
    SURVEY_SECRET_KEY: ${{SURVEY_SECRET_KEY}}
  healthcheck: {{path: /healthz, interval: 2, timeout: 2, retries: 15}}
lb:
  image: surveyctl-lab/nginx:latest
  port: 18080
  algorithm: least_conn
redis:
  image: surveyctl-lab/redis:latest
  port: 16379
  password: ${{SURVEY_REDIS_PASSWORD}}
database:
  host: {ADDRESS}
  port: {DB_PORT}
  name: survey
  user: survey
  password: ${{SURVEY_DB_PASSWORD}}
  via: direct
"""


def _relay(listen: tuple[str, int], target: tuple[str, int], stop: threading.Event) -> None:
    """Forward TCP connections from `listen` to `target` until `stop` is set."""
    server = socket.create_server(listen, reuse_port=False)
    server.settimeout(0.5)

    def pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    while not stop.is_set():
        try:
            client, _ = server.accept()
        except TimeoutError:
            continue
        upstream = socket.create_connection(target)
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=pipe, args=(a, b), daemon=True).start()
    server.close()


def _network() -> None:
    shown = subprocess.run(["docker", "network", "inspect", NETWORK], capture_output=True)
    if shown.returncode != 0:
        subprocess.run(["docker", "network", "create", "--label", "surveyctl.bench=local",
                        "--subnet", SUBNET, "--gateway", ADDRESS, NETWORK], check=True,
                       capture_output=True)


def up(app_image: str) -> None:
    """Start the servers, write the topology, .env and known_hosts; wait for a signal."""
    from tests.services import MariaDBServer
    from tests.sshd import SSHServer

    class Sshd(SSHServer):
        def write_config(self) -> None:
            super().write_config()
            text = self.config.read_text().replace(
                "ListenAddress 127.0.0.1\n", f"ListenAddress 127.0.0.1\nListenAddress {ADDRESS}\n")
            self.config.write_text(text)

    DIR.mkdir(parents=True, exist_ok=True)
    DIR.chmod(0o700)
    _network()
    env = DIR / ".env"
    if not env.exists():
        env.touch(mode=0o600)
        env.write_text("".join(f"{k}={secrets.token_urlsafe(24)}\n" for k in (
            "SURVEY_SECRET_KEY", "SURVEY_REDIS_PASSWORD", "SURVEY_DB_PASSWORD")))
    values = dict(line.split("=", 1) for line in env.read_text().split())
    servers = {}
    for name in ("solo",):
        server = Sshd(DIR / f"sshd-{name}")
        server.client_key = DIR / "client_ed25519"
        if not server.client_key.exists():
            (DIR / f"sshd-{name}" / "client_ed25519").rename(server.client_key)
            (DIR / f"sshd-{name}" / "client_ed25519.pub").rename(
                server.client_key.with_suffix(".pub"))
        (server.root / "authorized_keys").write_text(
            server.client_key.with_suffix(".pub").read_text())
        servers[name] = server.start()
    known = "".join(s.known_hosts_line().replace("[127.0.0.1]", f"[{ADDRESS}]")
                    for s in servers.values())
    (DIR / "known_hosts").write_text(known)
    db = MariaDBServer(DIR / "mariadb")
    stop = threading.Event()
    try:
        db.start()
        with db.root_connection() as conn, conn.cursor() as cur:
            cur.execute("CREATE DATABASE IF NOT EXISTS survey")
            cur.execute("CREATE USER IF NOT EXISTS survey@'127.0.0.1' IDENTIFIED BY %s",
                        (values["SURVEY_DB_PASSWORD"],))
            cur.execute("ALTER USER survey@'127.0.0.1' IDENTIFIED BY %s",
                        (values["SURVEY_DB_PASSWORD"],))
            cur.execute("GRANT ALL ON survey.* TO survey@'127.0.0.1'")
        from survey_ctl.migrate import migrate
        from tests.conftest import MIGRATIONS

        with db.root_connection() as conn:
            conn.select_db("survey")
            migrate(conn, MIGRATIONS)
        threading.Thread(target=_relay, args=((ADDRESS, DB_PORT), ("127.0.0.1", db.port), stop),
                         daemon=True).start()
        ports = {name: s.port for name, s in servers.items()}
        (DIR / "surveyctl.yaml").write_text(topology_text(DIR, ports, app_image))
        print(f"ready: {DIR / 'surveyctl.yaml'}", flush=True)
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        while not stop.is_set():
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        for s in servers.values():
            s.stop()
        db.stop()


def down() -> None:
    """Remove the private network (run `surveyctl down` on the topology first)."""
    subprocess.run(["docker", "network", "rm", NETWORK], capture_output=True)


def main() -> None:
    """CLI: `up` (foreground) or `down`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["up", "down"])
    parser.add_argument("--app-image", default="pesquisa-app:latest")
    args = parser.parse_args()
    up(args.app_image) if args.action == "up" else down()


if __name__ == "__main__":
    main()
