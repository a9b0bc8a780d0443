"""The peers' `surveyctl status`: pyinfra facts about every container and backend.

    PEERS_VARS=OUT/vars.json pyinfra -y OUT/pyinfra_inventory.py status.py
"""

import json
import os
import shlex

from pyinfra import host
from pyinfra.facts.docker import DockerContainer
from pyinfra.facts.server import Command

MODEL = json.loads(open(os.environ["PEERS_VARS"]).read())  # noqa: SIM115
ME = MODEL["hosts"][host.name]
CHECKS = MODEL["checks"]
q = shlex.quote
problems = []

for item in ME["containers"]:
    found = host.get_fact(DockerContainer, object_id=item["name"]) or []
    state = found[0]["State"] if found else {}
    if state.get("Status") != "running":
        problems.append(f"{item['name']}: {state.get('Status', 'missing')}")
    elif "healthcheck" in item and (state.get("Health") or {}).get("Status") != "healthy":
        problems.append(f"{item['name']}: {(state.get('Health') or {}).get('Status')}")

if host.name == CHECKS["vpn_host"]:
    shown = host.get_fact(Command, f"docker exec {q(CHECKS['vpn_container'])} ip -4 addr show "
                          f"dev {q(CHECKS['vpn_interface'])} || true") or ""
    if ",UP" not in shown:
        problems.append("vpn tunnel down")


def _get(address: str, port: str, path: str) -> str:
    script = (f"exec 3<>/dev/tcp/{address}/{port} && printf 'GET {path} HTTP/1.0\\r\\n"
              f"Host: {address}\\r\\n\\r\\n' >&3 && head -n1 <&3")
    return host.get_fact(Command, f"bash -c {q(script)} || true") or ""


if host.name == CHECKS["lb_host"]:
    address, port = CHECKS["lb_url"].removeprefix("http://").split(":")
    for path in ("/nginx-health", CHECKS["health_path"]):
        if " 200 " not in _get(address, port, path):
            problems.append(f"GET {path} through Nginx failed")
for item in ME["containers"]:
    if item["name"] in ME["app_containers"]:
        address, port = item["ports"][0].split(":")[:2]
        if " 200 " not in _get(address, port, CHECKS["health_path"]):
            problems.append(f"{item['name']}: backend {address}:{port} does not answer")
        ready = host.get_fact(Command, f"docker exec {q(item['name'])} python3 -c "
                              f"{q(CHECKS['ready_script'])} || true") or ""
        if not ready.startswith("200"):
            problems.append(f"{item['name']}: /readyz {ready[:80]}")

if problems:
    raise SystemExit(f"{host.name}: " + "; ".join(problems))
