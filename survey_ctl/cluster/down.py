"""`surveyctl down`: remove what `up` made on every host (volumes only with --volumes)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from survey_ctl.cluster import firewall, guard
from survey_ctl.cluster.executor import HostPlan, remove_containers
from survey_ctl.cluster.facts import cluster_resources
from survey_ctl.cluster.lock import host_lock
from survey_ctl.cluster.up import Cluster, HostReport, _reports, _say, audit
from survey_ctl.remote.docker import list_containers, state_dir

if TYPE_CHECKING:
    from survey_ctl.remote.ssh import HostConnection


def down_host(conn: HostConnection, cluster: Cluster, volumes: bool) -> list[str]:
    """Remove the cluster's containers, networks, firewall chain, state files (and volumes)."""
    topo, say = cluster.topo, _say(conn.name)
    done: list[str] = []
    containers = list_containers(conn, topo.cluster)
    if containers:
        names = sorted(c.name for c in containers)
        say(f"remove {', '.join(names)}")
        remove_containers(conn, names)
        done += [f"removed container {name}" for name in names]
    networks, labelled_volumes = cluster_resources(conn, topo.cluster)
    for name in sorted(networks):
        conn.docker(["network", "rm", name])
        done.append(f"removed network {name}")
        say(done[-1])
    images = list(dict.fromkeys(spec.image for spec in cluster.desired.get(conn.name, [])))
    present = [i for i in images if conn.run(["docker", "image", "inspect", i]).ok]
    can_run = present or conn.host.ssh.user == "root"
    if can_run and firewall.run_as_root(conn, firewall.remove_script(topo),
                                        present) == firewall.REMOVED:
        done.append(f"removed firewall chain {firewall.firewall_chain(topo)}")
        say(done[-1])
    state = state_dir(conn.home(), topo.cluster)
    removed = conn.check(["sh", "-c", _CLEAR_STATE, "sh", state]).text.split()
    if removed:
        done.append(f"removed {', '.join(removed)} from {state} (the audit log stays)")
        say(done[-1])
    if volumes:
        for name in sorted(labelled_volumes):
            conn.docker(["volume", "rm", name])
            done.append(f"removed volume {name}")
            say(done[-1])
    return done


# Everything `up` and `deploy` wrote in the state folder, but the audit log (append-only,
# it outlives `down`) and the locks held while `down` runs.
_CLEAR_STATE = (
    'cd "$1" 2>/dev/null || exit 0; for f in * .[!.]*; do case "$f" in '
    '"*"|".[!.]*"|audit.log|.lock|deploy.lock) ;; *) rm -rf -- "$f" && echo "$f";; esac; done'
)


def down_cluster(cluster: Cluster, volumes: bool) -> dict[str, HostReport]:
    """`down_host` on every host in parallel; one report per host."""
    def one(conn: HostConnection) -> HostPlan:
        with host_lock(conn, state_dir(conn.home(), cluster.topo.cluster), _say(conn.name)):
            return HostPlan(conn.name, prep=down_host(conn, cluster, volumes))

    with cluster.pool() as pool, \
            guard.cluster_lock(pool.get(cluster.topo.lb_host.name), cluster.topo, "down"):
        cluster.pin_release(pool)  # its image runs the firewall helper on the app hosts
        reports = _reports(pool.each(one))
        audit(pool, cluster.topo, "down", reports)
    return reports
