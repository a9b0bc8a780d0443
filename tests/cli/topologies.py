"""A valid topology and the files it points at, for the config tests (unit and CLI)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SECRETS = {
    "SURVEY_SECRET_KEY": "sk-TOPSECRET-flask-key",
    "SURVEY_REDIS_PASSWORD": "rp-TOPSECRET-redis",
    "SURVEY_DB_PASSWORD": "db-TOPSECRET-maria",
}
SECRET_MARK = "TOPSECRET"  # every secret value contains it; no output may

DELETE = object()


def valid_topology() -> dict[str, Any]:
    """The seed's topology, with files relative to the topology's folder."""
    return {
        "cluster": "pesquisa",
        "ssh": {
            "user": "deploy",
            "identity_file": "keys/id_ed25519",
            "known_hosts": "keys/known_hosts",
            "host_key_policy": "strict",
            "connect_timeout": 10,
        },
        "hosts": [
            {"name": "lb", "address": "192.168.56.10", "roles": ["lb", "vpn", "redis"]},
            {"name": "app1", "address": "192.168.56.11", "roles": ["app"]},
            {"name": "app2", "address": "192.168.56.12", "roles": ["app"],
             "ssh": {"port": 2222}},
        ],
        "app": {
            "image": "pesquisa-app:latest",
            "build": {"context": ".", "dockerfile": "stacks/app/Dockerfile",
                      "args": {"BASE_IMAGE": "python:3.12-slim"}},
            "env": {"SURVEY_SECRET_KEY": "${SURVEY_SECRET_KEY}"},
            "healthcheck": {"path": "/healthz"},
        },
        "lb": {"algorithm": "least_conn"},
        "redis": {"password": "${SURVEY_REDIS_PASSWORD}"},
        "database": {"host": "10.8.0.1", "name": "survey", "user": "survey",
                     "password": "${SURVEY_DB_PASSWORD}", "via": "vpn"},
        "vpn": {"client_config": "vpn/client.ovpn"},
    }


def changed(data: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """A deep copy of `data` with `a.0.b` set to `value` (or removed, for DELETE)."""
    data = copy.deepcopy(data)
    *parents, last = [int(p) if p.isdigit() else p for p in dotted.split(".")]
    node: Any = data
    for part in parents:
        node = node[part]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return data


@dataclass
class Workspace:
    """A folder holding the files a topology refers to (key, known_hosts, VPN profile…)."""

    dir: Path

    @classmethod
    def create(cls, folder: Path) -> Workspace:
        """Make the key, known_hosts, VPN profile and Dockerfile of `valid_topology()`."""
        for name in ("keys/id_ed25519", "keys/known_hosts", "vpn/client.ovpn",
                     "stacks/app/Dockerfile"):
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text("placeholder\n")
        return cls(folder)

    def write(self, topology: dict[str, Any] | str, name: str = "surveyctl.yaml") -> Path:
        """Write a topology (a dict as YAML, or raw text) and return its path."""
        text = topology if isinstance(topology, str) else yaml.safe_dump(topology, sort_keys=False)
        path = self.dir / name
        path.write_text(text)
        return path
