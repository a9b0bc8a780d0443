"""The cluster's iptables chain on a host: scripts (pure) and how they run as root.

The SSH user is in the docker group, not root, and iptables needs root. So the
scripts run in a throwaway container that chroots into the host's own root
(`docker run --rm -i --net host --cap-add NET_ADMIN -v /:/host --entrypoint chroot
IMAGE /host sh -s`): the host's own iptables binary, libraries and backend (nft or
legacy, the one dockerd uses), in the host's network namespace. Any image with a
`chroot` binary will do (Debian and Alpine images have one); the host's own images
are tried in turn. (`nsenter --target 1` with `--pid host` was tried first: opening
/proc/1/ns/net is refused there even with SYS_PTRACE.) Being in the docker group is
root-equivalent anyway; this only makes that use explicit. As root, `sh -s` runs
directly on the host.

The chain is (re)filled with one `iptables-restore --noflush` transaction, so a guarded
port is never open while the rules change; its last rule's comment carries a hash of
the rules, so one `iptables -S` tells whether a host is current (no change, no write).
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

from survey_ctl.errors import HostError
from survey_ctl.specs.cluster import firewall_chain, firewall_jump, firewall_marker, firewall_rules

if TYPE_CHECKING:
    from survey_ctl.config import Host, Topology
    from survey_ctl.remote.ssh import HostConnection

PATH = "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CURRENT, STALE, APPLIED, REMOVED, ABSENT = "current", "stale", "applied", "removed", "absent"
UNKNOWN = "unknown"  # not read: `up` runs the (idempotent) apply script, which tells


def change_line(topo: Topology) -> str:
    """How `plan` and `up` name (re)applying the chain."""
    return f"apply firewall chain {firewall_chain(topo)}"


def apply_script(topo: Topology, host: Host) -> str:
    """sh script: print `current` if the chain is up to date, else (unless $1 is `check`:
    print `stale`) replace its rules, hook it into DOCKER-USER once and print `applied`."""
    rules = firewall_rules(topo, host)
    chain = shlex.quote(firewall_chain(topo))
    check, insert = firewall_jump(topo)
    marker = shlex.quote(firewall_marker(rules[:-1]))
    lines = [
        PATH,
        f"if iptables -w -S {chain} 2>/dev/null | grep -qF -- {marker} && "
        f"{shlex.join(check)} 2>/dev/null; then echo {CURRENT}; exit 0; fi",
        f'if [ "${{1:-}}" = check ]; then echo {STALE}; exit 0; fi',
        "iptables-restore -w --noflush <<'SURVEYCTL_RULES' || exit 1",
        restore_text(rules),
        "SURVEYCTL_RULES",
        f"{shlex.join(check)} 2>/dev/null || {shlex.join(insert)} || exit 1",
        f"echo {APPLIED}",
    ]
    return "\n".join(lines) + "\n"


def restore_text(rules: list[tuple[str, ...]]) -> str:
    """`firewall_rules` as one iptables-restore transaction (pure): the chain is declared
    (made, or flushed if it exists) and refilled atomically, never open in between."""
    body = []
    for rule in rules:
        args = rule[2:]  # without "iptables -w"
        if args[0] == "-A":
            body.append(" ".join(f'"{a}"' if " " in a else a for a in args))
    chain = rules[0][3]
    return "\n".join(["*filter", f":{chain} - [0:0]", *body, "COMMIT"])


def remove_script(topo: Topology) -> str:
    """sh script: unhook the chain from DOCKER-USER, flush and delete it; print `removed`
    (or `absent` when there was no chain)."""
    chain = shlex.quote(firewall_chain(topo))
    return "\n".join([
        PATH,
        f"iptables -w -n -L {chain} >/dev/null 2>&1 || {{ echo {ABSENT}; exit 0; }}",
        f"while iptables -w -D DOCKER-USER -j {chain} 2>/dev/null; do :; done",
        f"iptables -w -F {chain} 2>/dev/null; iptables -w -X {chain} 2>/dev/null",
        f"echo {REMOVED}",
    ]) + "\n"


def root_argv(image: str | None, argument: str = "") -> list[str]:
    """The argv that runs a script (on stdin) as root on the host (see the module doc)."""
    shell = ["sh", "-s", *([argument] if argument else [])]
    if image is None:
        return shell
    return ["docker", "run", "--rm", "-i", "--user", "0:0", "--net", "host",
            "--cap-add", "NET_ADMIN", "--mount", "type=bind,source=/,target=/host",
            "--entrypoint", "chroot", image, "/host", *shell]


def run_as_root(conn: HostConnection, script: str, images: list[str], argument: str = "") -> str:
    """Run `script` as root on the host; its last output line. Tries `images` in turn."""
    if conn.host.ssh.user == "root":
        candidates: list[str | None] = [None]
    else:
        candidates = list(dict.fromkeys(images))
        if not candidates:
            raise HostError(conn.name, "no image on the host to run iptables through",
                            hint="run `surveyctl up` (it ships the images) and try again")
    problems = []
    for image in candidates:
        result = conn.run(root_argv(image, argument), stdin=script.encode(), timeout=60)
        if result.ok and result.text.strip():
            return result.text.strip().splitlines()[-1]
        problem = conn.checked_docker(result, "docker run", check=False)
        problems.append(f"{image}: {problem.error_text or f'exit {result.rc}'}")
    raise HostError(conn.name, "could not update the firewall (iptables as root): "
                    + "; ".join(problems)[:500],
                    hint="the host needs iptables (Docker needs it too) and an image with "
                    "`chroot`; or connect as root")
