"""Logging in to a lab host the way surveyctl will: the generated key, strict known_hosts."""

from __future__ import annotations

from pathlib import Path

from survey_ctl.errors import LabError
from survey_ctl.lab.spec import SSH_USER, Host


def ssh_run(
    host: Host,
    key_file: Path,
    known_hosts: Path,
    command: str,
    user: str = SSH_USER,
    timeout: float = 10,
) -> tuple[int, str]:
    """Run `command` on `host` over SSH (strict host-key checking): (exit status, stdout)."""
    import paramiko

    client = paramiko.SSHClient()
    client.load_host_keys(str(known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect(
            host.address,
            username=user,
            key_filename=str(key_file),
            look_for_keys=False,
            allow_agent=False,
            timeout=timeout,
            banner_timeout=timeout,
            auth_timeout=timeout,
        )
        _, stdout, _ = client.exec_command(command, timeout=timeout)
        output = stdout.read().decode(errors="replace")
        return stdout.channel.recv_exit_status(), output
    except (paramiko.SSHException, OSError) as exc:
        raise LabError(
            f"{host.name}: SSH login as {user} to {host.address} failed: {exc}",
            "run `surveyctl lab status`; `surveyctl lab up` repairs the lab",
        ) from None
    finally:
        client.close()


def check_login(host: Host, key_file: Path, known_hosts: Path) -> str:
    """Log in and check the host's services; returns a short description."""
    command = (
        "docker version --format '{{.Server.Version}}'"
        if host.kind == "vm"
        else "ip -4 -o addr show dev tun0"
    )
    code, output = ssh_run(host, key_file, known_hosts, command)
    if code != 0:
        raise LabError(
            f"{host.name}: logged in, but `{command}` failed",
            f"see `docker logs {host.container}`; `surveyctl lab up` repairs the lab",
        )
    if host.kind == "vm":
        return f"Docker Engine {output.strip()}"
    return "tunnel up"
