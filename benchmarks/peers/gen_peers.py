"""Render the peers' inventories and variables from a surveyctl topology.

Both peers (the Ansible playbook and the pyinfra deploy in this folder) read what
this script writes, so they converge exactly what `surveyctl up` converges: the same
container specs (`survey_ctl.specs.cluster_specs`: names, images, env, ports, mounts,
labels with the spec hash, health checks), the same rendered nginx.conf
(`render_nginx_conf`, through the spec's config file), the same firewall script and
the same checks. Secrets go into `vars.json` and `secrets/*.tar` (mode 0600, in a
git-ignored folder), never into argv.

    benchmarks/.venv-peers/bin/python benchmarks/peers/gen_peers.py \
        --topology .lab/surveyctl.yaml --out benchmarks/.peers-out/lab
"""

from __future__ import annotations

import argparse
import json
import os
import posixpath
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from survey_ctl.cluster import firewall  # noqa: E402
from survey_ctl.cluster.verify import READY_SCRIPT  # noqa: E402
from survey_ctl.remote.docker import config_path, secrets_tar, state_dir  # noqa: E402
from survey_ctl.specs.container import ContainerSpec  # noqa: E402


def _seconds(value: float) -> str:
    return f"{value:g}s"


def container_vars(spec: ContainerSpec, state: str, owner: tuple[int, int],
                   missing_dirs: tuple[str, ...] = ()) -> dict[str, Any]:
    """One container as the peers' variables (pure; secret contents included).

    `missing_dirs`: parent folders of the secrets that the image lacks (a copy into a
    container needs its parent folder)."""
    item: dict[str, Any] = {
        "name": spec.name,
        "image": spec.image,
        "command": list(spec.command),
        "command_line": shlex.join(spec.command),
        "env": dict(spec.env),
        "env_list": [f"{k}={v}" for k, v in sorted(spec.env.items())],
        "labels": dict(spec.labels),
        "label_list": [f"{k}={v}" for k, v in sorted(spec.labels.items())],
        "spec_hash": spec.hash_label,
        "restart": spec.restart,
        "ports": [f"{p.host_ip}:{p.host_port}:{p.container_port}/{p.protocol}"
                  for p in spec.ports],
        "mounts": [{"type": m.kind, "source": m.source, "target": m.target,
                    "read_only": m.read_only} for m in spec.volumes],
        "cap_add": list(spec.cap_add),
        "devices": list(spec.devices),
        "owner": {"uid": owner[0], "gid": owner[1]},
        "secrets": [{"target": s.target, "content": s.value.get_secret_value(),
                     "mode": f"0{s.mode:o}"} for _, s in sorted(spec.secret_files.items())],
        "configs": [],
        "secret_dirs": [d for d in dict.fromkeys(posixpath.dirname(s.target)
                                                  for s in spec.secret_files.values())
                        if d in missing_dirs],
    }
    if spec.entrypoint is not None:
        item["entrypoint"] = list(spec.entrypoint)
    if spec.network_mode:
        item["network_mode"] = spec.network_mode
    elif spec.network:
        item["network"] = spec.network
        item["aliases"] = list(spec.network_aliases)
    if spec.user:
        item["user"] = spec.user
    check = spec.healthcheck
    if check is not None:
        kind, *test = check.test
        shell = test[0] if kind == "CMD-SHELL" else shlex.join(test)
        item["healthcheck"] = {"test": ["CMD-SHELL", shell], "interval": _seconds(check.interval),
                               "timeout": _seconds(check.timeout), "retries": check.retries}
        if check.start_period:
            item["healthcheck"]["start_period"] = _seconds(check.start_period)
        item["health_args"] = ["--health-cmd", shell, "--health-interval",
                               _seconds(check.interval), "--health-timeout",
                               _seconds(check.timeout), "--health-retries", str(check.retries)]
        if check.start_period:
            item["health_args"] += ["--health-start-period", _seconds(check.start_period)]
    folders = {posixpath.dirname(c.target) for c in spec.config_files.values()}
    for _, config in sorted(spec.config_files.items()):
        path = config_path(state, spec, config)
        item["configs"].append({
            "path": path, "folder": posixpath.dirname(path), "target": config.target,
            "content": config.content, "reload": list(config.reload),
            "check": list(config.check)})
    if folders:
        source = posixpath.join(state, spec.name, "config")
        item["mounts"].append({"type": "bind", "source": source, "target": folders.pop(),
                               "read_only": True})
    extra = [*item.get("health_args", [])]
    for alias in item.get("aliases", []):
        extra += ["--network-alias", alias]
    for cap in spec.cap_add:
        extra += ["--cap-add", cap]
    for device in spec.devices:
        extra += ["--device", device]
    item["extra_args"] = extra
    item["mount_list"] = [f"type={m['type']},source={m['source']},target={m['target']}"
                          + (",readonly" if m["read_only"] else "") for m in item["mounts"]]
    return item


def peer_model(topo, desired: dict[str, list[ContainerSpec]], homes: dict[str, str],
               owners: dict[str, tuple[int, int]], image_ids: dict[str, str],
               missing: dict[str, tuple[str, ...]] | None = None) -> dict[str, Any]:
    """Everything the peers need, per host (pure): containers, networks, volumes,
    images, firewall script and the checks `surveyctl up` runs at its end."""
    hosts: dict[str, Any] = {}
    for host in topo.hosts:
        specs = desired.get(host.name, [])
        state = state_dir(homes[host.name], topo.cluster)
        images = list(dict.fromkeys(spec.image for spec in specs))
        root = host.ssh.user == "root"
        hosts[host.name] = {
            "address": host.address,
            "roles": list(host.roles),
            "state": state,
            "images": [{"name": name, "id": image_ids.get(name, "")} for name in images],
            "networks": list(dict.fromkeys(s.network for s in specs
                                           if s.network and not s.network_mode)),
            "volumes": list(dict.fromkeys(m.source for s in specs for m in s.volumes
                                          if m.kind == "volume")),
            "firewall_script": firewall.apply_script(topo, host),
            "firewall_argv": firewall.root_argv(None if root or not images else images[0]),
            "containers": [container_vars(s, state, owners.get(s.image, (0, 0)),
                                          (missing or {}).get(s.image, ()))
                           for s in specs],
            "app_containers": [s.name for s in specs if s.role == "app"],
            "health_containers": [s.name for s in specs if s.healthcheck is not None],
        }
    vpn = topo.vpn_host
    return {
        "cluster": topo.cluster,
        "label_cluster": "surveyctl.cluster",
        "hosts": hosts,
        "checks": {
            "vpn_host": vpn.name if vpn else "",
            "vpn_container": f"{topo.cluster}-vpn" if vpn else "",
            "vpn_interface": topo.vpn.interface if topo.vpn else "",
            "lb_host": topo.lb_host.name,
            "lb_url": f"http://{topo.lb_host.address}:{topo.lb.port}",
            "health_path": topo.app.healthcheck.path,
            "ready_script": READY_SCRIPT % topo.app.port,
        },
    }


def ansible_inventory(topo, python: str) -> str:
    """inventory.ini: one line per topology host, SSH as the topology says (strict keys)."""
    lines = ["[cluster]"]
    for host in topo.hosts:
        ssh = host.ssh
        common = (f"-o UserKnownHostsFile={ssh.known_hosts} -o IdentitiesOnly=yes "
                  "-o StrictHostKeyChecking=yes")
        lines.append(f"{host.name} ansible_host={host.address} ansible_port={ssh.port} "
                     f"ansible_user={ssh.user} ansible_ssh_private_key_file={ssh.identity_file} "
                     f"ansible_python_interpreter={python} "
                     f"ansible_ssh_common_args='{common}'")
    return "\n".join(lines) + "\n"


def ansible_cfg(forks: int) -> str:
    """ansible.cfg: the settings Ansible's docs recommend for speed over SSH."""
    return ("[defaults]\nhost_key_checking = True\ngathering = explicit\n"
            f"forks = {forks}\ninterpreter_python = auto_silent\nstdout_callback = default\n"
            "[ssh_connection]\npipelining = True\n"
            "ssh_args = -C -o ControlMaster=auto -o ControlPersist=60s\n")


def pyinfra_inventory(topo) -> str:
    """pyinfra inventory: the topology's hosts with their SSH settings."""
    hosts = []
    for host in topo.hosts:
        ssh = host.ssh
        data = {"ssh_hostname": host.address, "ssh_port": ssh.port, "ssh_user": ssh.user,
                "ssh_key": str(ssh.identity_file), "ssh_known_hosts_file": str(ssh.known_hosts),
                "ssh_strict_host_key_checking": "yes"}
        hosts.append((host.name, data))
    return f"cluster = {hosts!r}\n"


def _image_owner(image: str, user: str) -> tuple[int, int]:
    """uid/gid of the image's user (`user` override or its USER), read here once."""
    argv = ["docker", "run", "--rm", "--network", "none", "--entrypoint", "id"]
    if user:
        argv += ["--user", user]
    shown = subprocess.run([*argv, image], capture_output=True, text=True, check=False)
    parts = dict(p.split("=", 1) for p in shown.stdout.split() if "=" in p)
    try:
        return int(parts["uid"].split("(")[0]), int(parts["gid"].split("(")[0])
    except (KeyError, ValueError):
        return 0, 0


def _missing_dirs(image: str, dirs: list[str]) -> tuple[str, ...]:
    """Which of `dirs` the image lacks (checked here once)."""
    script = 'for d in "$@"; do [ -d "$d" ] || echo "$d"; done'
    shown = subprocess.run(["docker", "run", "--rm", "--network", "none", "--entrypoint", "sh",
                            image, "-c", script, "sh", *dirs], capture_output=True, text=True,
                           check=False)
    return tuple(shown.stdout.split())


def _local_id(image: str) -> str:
    done = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", image],
                          capture_output=True, text=True, check=False)
    return done.stdout.strip()


def generate(topology: Path, out: Path, python: str) -> Path:
    """Write the peers' files for `topology` into `out`; the vars file's path."""
    from survey_ctl.cluster.up import Cluster

    out = out.resolve()
    cluster = Cluster.load(topology)
    topo = cluster.topo
    with cluster.pool() as pool:
        homes = {name: outcome.value for name, outcome in pool.each(lambda c: c.home()).items()}
    bad = [name for name, home in homes.items() if not home]
    if bad:
        raise SystemExit(f"cannot reach {', '.join(bad)} over SSH")
    images = {s.image: s.user or "" for specs in cluster.desired.values() for s in specs}
    owners = {image: _image_owner(image, user) for image, user in images.items()}
    ids = {image: _local_id(image) for image in images}
    dirs: dict[str, set[str]] = {}
    for specs in cluster.desired.values():
        for spec in specs:
            dirs.setdefault(spec.image, set()).update(
                posixpath.dirname(f.target) for f in spec.secret_files.values())
    missing = {image: _missing_dirs(image, sorted(d)) for image, d in dirs.items() if d}
    model = peer_model(topo, cluster.desired, homes, owners, ids, missing)
    out.mkdir(parents=True, exist_ok=True)
    out.chmod(0o700)
    (out / "secrets").mkdir(exist_ok=True)
    for specs in cluster.desired.values():
        for spec in specs:
            if spec.secret_files:
                path = out / "secrets" / f"{spec.name}.tar"
                path.touch(mode=0o600)
                path.write_bytes(secrets_tar(spec, *owners.get(spec.image, (0, 0))))
    model["out"] = str(out)
    model["image_dir"] = str(out / "images")
    vars_path = out / "vars.json"
    vars_path.touch(mode=0o600)
    vars_path.write_text(json.dumps(model, indent=1))
    (out / "inventory.ini").write_text(ansible_inventory(topo, python))
    (out / "ansible.cfg").write_text(ansible_cfg(max(5, len(topo.hosts))))
    (out / "pyinfra_inventory.py").write_text(pyinfra_inventory(topo))
    return vars_path


def save_images(vars_path: Path) -> None:
    """`docker save` each image once into the image folder (for hosts that lack it)."""
    model = json.loads(vars_path.read_text())
    folder = Path(model["image_dir"])
    folder.mkdir(exist_ok=True)
    for host in model["hosts"].values():
        for image in host["images"]:
            tar = folder / f"{image['id'].replace('sha256:', '')}.tar"
            if image["id"] and not tar.exists():
                subprocess.run(["docker", "save", "--output", str(tar), image["name"]],
                               check=True)


def main() -> None:
    """CLI: render the peers' files from a topology."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topology", type=Path, default=Path(".lab/surveyctl.yaml"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--python", default="auto_silent",
                        help="ansible_python_interpreter on the hosts")
    parser.add_argument("--save-images", action="store_true")
    args = parser.parse_args()
    os.umask(0o077)
    path = generate(args.topology, args.out, args.python)
    if args.save_images:
        save_images(path)
    print(path)


if __name__ == "__main__":
    main()
