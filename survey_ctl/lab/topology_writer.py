"""The files `lab up` hands to the user: topology, secrets, SSH and VPN material."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import yaml

from survey_ctl.lab.files import write_file
from survey_ctl.lab.spec import (
    CLUSTER,
    DB_NAME,
    DB_PORT,
    DB_USER,
    HOSTS,
    NGINX_IMAGE,
    OPENVPN_IMAGE,
    PYTHON_IMAGE,
    REDIS_IMAGE,
    SSH_USER,
    VPN_SERVER_ADDRESS,
)

TOPOLOGY = "surveyctl.yaml"
ENV_FILE = ".env"
KEY_FILE = "id_ed25519"
KNOWN_HOSTS = "known_hosts"
VPN_PROFILE = "client.ovpn"
SECRET_NAMES = ("SURVEY_SECRET_KEY", "SURVEY_REDIS_PASSWORD", "SURVEY_DB_PASSWORD")
ROLES = {"lb": ["lb", "vpn", "redis"], "app1": ["app"], "app2": ["app"]}


def read_env(path: Path) -> dict[str, str]:
    """The NAME=VALUE lines of a .env file (comments and blank lines skipped)."""
    if not path.is_file():
        return {}
    values = {}
    for line in path.read_text().splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and not name.startswith("#"):
            values[name.strip()] = value.strip()
    return values


def ensure_secrets(path: Path) -> dict[str, str]:
    """Reuse the secrets in the .env at `path`, making any that are missing (file mode 0600)."""
    values = read_env(path)
    for name in SECRET_NAMES:
        if not values.get(name):
            values[name] = secrets.token_urlsafe(32)
    lines = ["# Secrets of the surveyctl lab (made by `surveyctl lab up`). Keep private."]
    lines += [f"{name}={value}" for name, value in values.items()]
    write_file(path, "\n".join(lines) + "\n", 0o600)
    return values


def known_hosts_text(host_keys: dict[str, str]) -> str:
    """known_hosts lines for the lab hosts: `ADDRESS TYPE KEY`."""
    by_name = {h.name: h for h in HOSTS}
    return "".join(f"{by_name[name].address} {key}\n" for name, key in host_keys.items())


def topology(lab_dir: Path, repo: Path) -> dict[str, Any]:
    """The topology of the lab, in the format of config.example.yaml."""
    return {
        "cluster": CLUSTER,
        "ssh": {
            "user": SSH_USER,
            "port": 22,
            "identity_file": str(lab_dir / KEY_FILE),
            "known_hosts": str(lab_dir / KNOWN_HOSTS),
            "host_key_policy": "strict",
            "connect_timeout": 10,
        },
        "hosts": [
            {"name": h.name, "address": h.address, "roles": ROLES[h.name]}
            for h in HOSTS
            if h.name in ROLES
        ],
        "app": {
            "image": f"{CLUSTER}-app:latest",
            "build": {
                "context": str(repo),
                "dockerfile": "stacks/app/Dockerfile",
                "args": {"BASE_IMAGE": PYTHON_IMAGE.tag},
            },
            "replicas": 1,
            "port": 8000,
            "env": {"SURVEY_SECRET_KEY": "${SURVEY_SECRET_KEY}"},
            "healthcheck": {"path": "/healthz", "interval": 2, "timeout": 2, "retries": 15},
        },
        "lb": {"image": NGINX_IMAGE.tag, "port": 80, "algorithm": "least_conn"},
        "redis": {
            "image": REDIS_IMAGE.tag,
            "port": 6379,
            "password": "${SURVEY_REDIS_PASSWORD}",
        },
        "database": {
            "host": VPN_SERVER_ADDRESS,
            "port": DB_PORT,
            "name": DB_NAME,
            "user": DB_USER,
            "password": "${SURVEY_DB_PASSWORD}",
            "via": "vpn",
        },
        "vpn": {
            "client_config": str(lab_dir / VPN_PROFILE),
            "image": OPENVPN_IMAGE.tag,
            "interface": "tun0",
        },
    }


def write_topology(lab_dir: Path, repo: Path) -> bool:
    """Write surveyctl.yaml; True if it changed."""
    header = (
        "# The surveyctl lab's topology (made by `surveyctl lab up`; secrets are in .env).\n"
        "# Hosts are containers on this machine; see docs/lab.md.\n"
    )
    body = yaml.safe_dump(topology(lab_dir, repo), sort_keys=False, default_flow_style=False)
    return write_file(lab_dir / TOPOLOGY, header + body, 0o644)


def setup_sql(values: dict[str, str]) -> str:
    """SQL that makes the database and its user with the generated password (idempotent)."""
    password = _sql_string(values["SURVEY_DB_PASSWORD"])
    user = f"'{DB_USER}'@'%'"
    return (
        f"CREATE DATABASE IF NOT EXISTS `{DB_NAME}` "
        "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;\n"
        f"CREATE USER IF NOT EXISTS {user} IDENTIFIED BY {password};\n"
        f"ALTER USER {user} IDENTIFIED BY {password};\n"
        f"GRANT ALL PRIVILEGES ON `{DB_NAME}`.* TO {user};\n"
        "FLUSH PRIVILEGES;\n"
    )


def _sql_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"
