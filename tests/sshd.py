"""A real OpenSSH server for the tests: its own host key, client key and config in a temp folder.

`SSHServer(root).start()` runs `/usr/sbin/sshd -D -e -f root/sshd_config` on 127.0.0.1
on a free port, accepting only `client_key` for the current user. `ssh_host()` builds
a topology `Host` pointing at it.
"""

from __future__ import annotations

import getpass
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.services import _binary, free_port


def keygen(path: Path, passphrase: str = "", kind: str = "ed25519", pem: bool = False) -> Path:
    """A new private key at `path` (and `path.pub`); `pem` for the legacy PEM format."""
    path.unlink(missing_ok=True)
    path.with_suffix(".pub").unlink(missing_ok=True)
    subprocess.run([_binary("ssh-keygen"), "-q", "-t", kind, "-N", passphrase, "-C", "test",
                    *(["-m", "PEM"] if pem else []), "-f", str(path)],
                   check=True, capture_output=True)
    return path


@dataclass
class SSHServer:
    """A private sshd on 127.0.0.1 for the current user, key authentication only."""

    root: Path
    port: int = field(default_factory=free_port)
    user: str = field(default_factory=getpass.getuser)
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.host_key = self.root / "ssh_host_ed25519_key"
        self.client_key = self.root / "client_ed25519"
        self.config = self.root / "sshd_config"
        self.log = self.root / "sshd.log"
        self.home = self.root / "home"
        self.home.mkdir(exist_ok=True)
        if not self.host_key.exists():
            keygen(self.host_key)
        if not self.client_key.exists():
            keygen(self.client_key)
        (self.root / "authorized_keys").write_text(
            self.client_key.with_suffix(".pub").read_text())

    def write_config(self) -> None:
        """The sshd_config: loopback only, our host key, public keys only, SFTP, forwarding."""
        self.config.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {self.host_key}\n"
            f"PidFile {self.root / 'sshd.pid'}\nAuthorizedKeysFile {self.root}/authorized_keys\n"
            "StrictModes no\nUsePAM no\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
            "PermitRootLogin prohibit-password\nAllowTcpForwarding yes\n"
            "Subsystem sftp internal-sftp\nLogLevel ERROR\nMaxSessions 20\n"
            # The login shell reads $HOME/.bashrc: keep the machine's dotfiles out.
            f"SetEnv {' '.join(f'{k}={v}' for k, v in {'HOME': self.home, **self.env}.items())}\n"
        )

    def start(self) -> SSHServer:
        """Run sshd in the foreground (-D) and wait for its banner."""
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation folder
        self.write_config()
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [_binary("sshd"), "-D", "-e", "-f", str(self.config)],
                stdout=log, stderr=log, stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"sshd exited: {self.log.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    if sock.recv(64).startswith(b"SSH-"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"sshd did not start: {self.log.read_text()}")

    def stop(self) -> None:
        """Stop sshd."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def regenerate_host_key(self) -> None:
        """Give the server a new host key (as a reinstalled machine would have), restarted."""
        self.stop()
        keygen(self.host_key)
        self.start()

    @property
    def known_host_name(self) -> str:
        """The name OpenSSH files this server's key under."""
        return f"[127.0.0.1]:{self.port}"

    def known_hosts_line(self, hashed: bool = False) -> str:
        """One known_hosts line for this server, optionally with a hashed name (`|1|…`)."""
        from paramiko.hostkeys import HostKeys

        kind, blob = self.host_key.with_suffix(".pub").read_text().split()[:2]
        name = HostKeys.hash_host(self.known_host_name) if hashed else self.known_host_name
        return f"{name} {kind} {blob}\n"

    def fingerprint(self) -> str:
        """The host key's `SHA256:…` fingerprint, as `ssh-keygen -l` prints it."""
        shown = subprocess.run([_binary("ssh-keygen"), "-l", "-f", str(self.host_key)],
                               check=True, capture_output=True, text=True).stdout
        return shown.split()[1]


def ssh_host(server: SSHServer, known_hosts: Path, name: str = "h1", **ssh):
    """A topology `Host` for `server` with effective SSH settings (overridable by `ssh`)."""
    from survey_ctl.config import Host, SSHSettings

    settings = dict(user=server.user, port=server.port, identity_file=server.client_key,
                    known_hosts=known_hosts, host_key_policy="strict", connect_timeout=5)
    settings.update(ssh)
    host = Host.model_validate({"name": name, "address": "127.0.0.1", "roles": ["app"]})
    host._ssh = SSHSettings.model_validate(settings, context={"base_dir": server.root})
    return host
