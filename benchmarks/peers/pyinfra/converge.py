"""The same converge as `surveyctl up`, as a pyinfra deploy (docker operations where
pyinfra has them, `server.shell` where it has none, as its docs recommend).

    PEERS_VARS=OUT/vars.json pyinfra -y OUT/pyinfra_inventory.py converge.py
"""

import json
import os
import shlex
from io import StringIO

from pyinfra import host
from pyinfra.facts.docker import DockerContainer
from pyinfra.facts.server import Command
from pyinfra.operations import docker, files, server

MODEL = json.loads(open(os.environ["PEERS_VARS"]).read())  # noqa: SIM115
ME = MODEL["hosts"][host.name]
CHECKS = MODEL["checks"]
LABEL = f"{MODEL['label_cluster']}={MODEL['cluster']}"
HASH = "surveyctl.spec-hash"
q = shlex.quote

# ---- images: no registry, so a missing or different image is copied and loaded
for image in ME["images"]:
    found = host.get_fact(Command, f"docker image inspect --format '{{{{.Id}}}}' {q(image['name'])}"
                          " 2>/dev/null || true")
    if (found or "").strip() != image["id"]:
        tar = f"{image['id'].replace('sha256:', '')}.tar"
        files.put(name=f"Copy {image['name']}", src=f"{MODEL['image_dir']}/{tar}",
                  dest=f"/tmp/{tar}", mode="600")
        server.shell(name=f"Load {image['name']}",
                     commands=[f"docker load --quiet --input /tmp/{tar}", f"rm -f /tmp/{tar}"])

# ---- host-level resources
for network in ME["networks"]:
    docker.network(name=f"Network {network}", network=network, labels=[LABEL])
for volume in ME["volumes"]:
    docker.volume(name=f"Volume {volume}", volume=volume, labels=[LABEL])
files.directory(name="State folder", path=ME["state"], mode="700")
firewall = f"{ME['state']}/.firewall.sh"
files.put(name="Firewall script", src=StringIO(ME["firewall_script"]), dest=firewall, mode="600")
server.shell(name="Firewall chain (iptables as root)",
             commands=[f"{shlex.join(ME['firewall_argv'])} < {q(firewall)}"])

# ---- containers, in spec order: configs (tested), create, secrets in, start
for item in ME["containers"]:
    name = item["name"]
    existing = host.get_fact(DockerContainer, object_id=name) or []
    labels = ((existing[0].get("Config") or {}).get("Labels") or {}) if existing else {}
    running = bool(existing) and existing[0]["State"]["Status"] == "running"
    current = labels.get(HASH) == item["spec_hash"]
    for config in item["configs"]:
        files.directory(name=f"Config folder of {name}", path=config["folder"], mode="755")
        candidate = config["path"] + ".new"
        put = files.put(name=f"Candidate {config['path']}", src=StringIO(config["content"]),
                        dest=candidate, mode="644")
        test = (f"docker run --rm --network none --mount type=bind,source={q(candidate)},"
                f"target={q(config['target'])},readonly --entrypoint {q(config['check'][0])} "
                f"{q(item['image'])} {shlex.join(config['check'][1:])}")
        commands = [test, f"cp -p {q(candidate)} {q(config['path'])}"]
        if current and running:
            commands.append(f"docker exec {q(name)} {shlex.join(config['reload'])}")
        server.shell(name=f"Test and install {config['path']}", commands=commands,
                     _if=put.did_change)
    spec = dict(
        container=name, image=item["image"], ports=item["ports"],
        networks=[item["network"]] if "network" in item else [],
        env_vars=item["env_list"], labels=item["label_list"], restart_policy=item["restart"],
        mounts=item["mount_list"], user=item.get("user"),
        entrypoint=item["entrypoint"][0] if item.get("entrypoint") else None,
        command=item["command_line"] or None,
        extra_args=[*(["--network", item["network_mode"]] if item.get("network_mode") else []),
                    *item["extra_args"]],
    )
    if current:
        docker.container(name=f"Container {name}", start=True, **spec)
        continue
    made = docker.container(name=f"Create {name}", start=False, force=bool(existing), **spec)
    commands = []
    if item["secrets"]:
        tar = f"{ME['state']}/.{name}.secrets.tar"
        files.put(name=f"Secrets of {name}", src=f"{MODEL['out']}/secrets/{name}.tar",
                  dest=tar, mode="400")
        commands += [f"docker cp - {q(name)}:/ < {q(tar)}", f"rm -f {q(tar)}"]
    server.shell(name=f"Start {name}", commands=[*commands, f"docker start {q(name)}"])

# ---- the checks `surveyctl up` ends with: tunnel, health, Nginx, app -> MariaDB
def _retry(command: str, times: int) -> str:
    return f"for i in $(seq {times}); do if {command}; then exit 0; fi; sleep 1; done; exit 1"


if host.name == CHECKS["vpn_host"]:
    tunnel = (f"docker exec {q(CHECKS['vpn_container'])} ip -4 addr show dev "
              f"{q(CHECKS['vpn_interface'])} | grep ',UP' >/dev/null")
    server.shell(name="VPN tunnel up", commands=[_retry(f"{{ {tunnel}; }}", 60)])
if ME["health_containers"]:
    names = " ".join(q(n) for n in ME["health_containers"])
    healthy = (f"[ -z \"$(docker inspect --format '{{{{.State.Health.Status}}}}' {names} "
               "| grep -v '^healthy$')\" ]")
    server.shell(name="Containers healthy", commands=[_retry(healthy, 60)])
if host.name == CHECKS["lb_host"]:
    address, port = CHECKS["lb_url"].removeprefix("http://").split(":")
    for path in ("/nginx-health", CHECKS["health_path"]):
        get = (f"exec 3<>/dev/tcp/{address}/{port} && printf 'GET {path} HTTP/1.0\\r\\n"
               f"Host: {address}\\r\\n\\r\\n' >&3 && head -n1 <&3 | grep -q ' 200 '")
        server.shell(name=f"GET {path} through Nginx",
                     commands=[_retry(f"bash -c {q(get)}", 25)])
for name in ME["app_containers"]:
    server.shell(name=f"{name} reaches MariaDB (/readyz)",
                 commands=[f"docker exec {q(name)} python3 -c {q(CHECKS['ready_script'])} "
                           "| grep -q '^200'"])
