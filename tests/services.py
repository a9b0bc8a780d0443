"""Real MariaDB and Redis servers for the tests, started on loopback in temp folders.

Each server is a private process on a free port: nothing is installed as a system
service, and secrets go through files or stdin, never argv.
"""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pymysql


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _binary(*names: str) -> str:
    for name in names:
        found = shutil.which(name, path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin")
        if found:
            return found
    raise RuntimeError(f"none of {names} is installed: run the README's test command")


def _wait(check, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            check()
            return
        except Exception as exc:
            last = exc
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not start within {timeout:.0f}s: {last}")


@dataclass
class MariaDBServer:
    """A private mariadbd on 127.0.0.1 with an admin account `tester`."""

    root: Path
    port: int = field(default_factory=free_port)
    user: str = "tester"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16), repr=False)
    process: subprocess.Popen | None = None

    @property
    def socket_path(self) -> Path:
        return self.root / "mysqld.sock"

    def start(self) -> MariaDBServer:
        """Initialise the data folder on first start, then run the server."""
        datadir = self.root / "data"
        if not datadir.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            subprocess.run(
                [_binary("mariadb-install-db"), "--no-defaults", f"--datadir={datadir}",
                 "--user=root", "--auth-root-authentication-method=socket", "--skip-test-db"],
                check=True, capture_output=True,
            )
            first_start = True
        else:
            first_start = False
        self.process = subprocess.Popen(
            [_binary("mariadbd"), "--no-defaults", f"--datadir={datadir}",
             f"--socket={self.socket_path}", f"--port={self.port}", "--bind-address=127.0.0.1",
             "--user=root", "--skip-name-resolve", "--innodb-buffer-pool-size=128M",
             "--innodb-flush-log-at-trx-commit=2", "--max-connections=300",
             f"--log-error={self.root / 'error.log'}", f"--pid-file={self.root / 'mysqld.pid'}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        _wait(lambda: pymysql.connect(unix_socket=str(self.socket_path), user="root").close(),
              "mariadbd")
        if first_start:
            with self.root_connection() as conn, conn.cursor() as cur:
                cur.execute("CREATE USER %s@'127.0.0.1' IDENTIFIED BY %s",
                            (self.user, self.password))
                cur.execute("GRANT ALL ON *.* TO %s@'127.0.0.1' WITH GRANT OPTION", (self.user,))
        return self

    def stop(self) -> None:
        """Stop the server and wait for it (the data folder stays)."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def root_connection(self) -> pymysql.connections.Connection:
        """root over the unix socket, autocommit on."""
        return pymysql.connect(unix_socket=str(self.socket_path), user="root", autocommit=True)

    def connect(self, database: str | None = None, **kwargs) -> pymysql.connections.Connection:
        """The admin account over TCP."""
        return pymysql.connect(host="127.0.0.1", port=self.port, user=self.user,
                               password=self.password, database=database, charset="utf8mb4",
                               **kwargs)

    def create_database(self, prefix: str = "t") -> str:
        """A new empty database with a unique name."""
        name = f"{prefix}_{secrets.token_hex(6)}"
        with self.root_connection() as conn, conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}` "
                        "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        return name

    def drop_database(self, name: str) -> None:
        """Remove a database made by `create_database`."""
        with self.root_connection() as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")


@dataclass
class RedisServer:
    """A private redis-server on 127.0.0.1 with a password (config given on stdin)."""

    root: Path
    port: int = field(default_factory=free_port)
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16), repr=False)
    process: subprocess.Popen | None = None

    def start(self) -> RedisServer:
        """Run the server; its config, password included, is read from stdin."""
        self.root.mkdir(parents=True, exist_ok=True)
        config = (
            f"port {self.port}\nbind 127.0.0.1\nsave \"\"\nappendonly no\n"
            f"dir {self.root}\nrequirepass {self.password}\n"
        )
        self.process = subprocess.Popen(
            [_binary("redis-server"), "-"], stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
        )
        assert self.process.stdin is not None
        self.process.stdin.write(config)
        self.process.stdin.close()
        _wait(lambda: self.client().ping(), "redis-server")
        return self

    def stop(self) -> None:
        """Stop the server."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def client(self, db: int = 0):
        """A redis-py client for this server."""
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password, db=db)
