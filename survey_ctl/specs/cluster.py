"""Container specs of the whole cluster, built from a `Topology` (pure: no I/O).

Networking: containers on different hosts talk through the hosts' addresses; each host
also has one bridge network named after the cluster, for its own containers.

- App containers (`<cluster>-app-<n>`) publish `app.port` as host port
  `app.port + n - 1` bound on their host's address (not 0.0.0.0). Only the lb host's
  Nginx should reach them: `firewall_rules` gives the iptables rules (pure data) for
  Docker's DOCKER-USER chain that drop traffic to published ports from any address but
  the allowed ones. Docker rewrites the destination before DOCKER-USER sees the packet,
  so the rules match the original address and port with conntrack (`--ctorigdst`,
  `--ctorigdstport`, `--ctdir ORIGINAL`). Traffic from the host's own containers
  (docker0, br-*), replies included, passes.
- Redis publishes `redis.port` on the redis host's address, requires its password,
  and is allowed (firewall) only from the app hosts' addresses.
- MariaDB sits behind the OpenVPN client on the vpn host. The app containers reach it
  through a TCP proxy on the vpn host: an Nginx `stream` server that listens on
  `vpn_address:database.port` and forwards to `database.host:database.port` through
  the tunnel, with `allow` for each app host address and `deny all`. When the vpn host
  is the lb host (the seed's layout) the proxy is the `stream {}` block of the lb's
  Nginx; otherwise it is a `<cluster>-dbproxy` Nginx on the vpn host. So the apps'
  SURVEY_DB_HOST is the vpn host's address with `database.via: vpn`, else
  `database.host`. An app container on the vpn host itself would come from a Docker
  bridge address, which the proxy does not allow: keep app and vpn roles apart.
- The VPN client runs with `network_mode: host`, NET_ADMIN and /dev/net/tun, so its
  tun interface and routes belong to the host, where the proxy's traffic goes.

Secrets reach containers only as files (`*_FILE` variables point at them), copied
into each created container before its first start, owned by the container's user
(the image's USER, e.g. the app's 10001) with mode 0400. Redis is started with the
image's entrypoint bypassed (`redis-server CONF`), as the image's user.

The firewall rules end with a rule whose comment carries a hash of the whole chain, so
`survey_ctl.cluster.firewall` can tell in one look whether a host's chain is current.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

from pydantic import SecretStr

from survey_ctl.specs.container import (
    LABEL_CLUSTER,
    LABEL_ROLE,
    ConfigFile,
    ContainerSpec,
    Healthcheck,
    Mount,
    PortBinding,
    SecretFile,
    with_hash,
)

if TYPE_CHECKING:
    from survey_ctl.config import Host, Topology

SECRETS_DIR = "/run/secrets"
NGINX_CONF_DIR = "/etc/nginx/surveyctl"
NGINX_CONF = f"{NGINX_CONF_DIR}/nginx.conf"
NGINX_HTTP_PORT = 80  # inside the nginx container
REDIS_CONTAINER_PORT = 6379
VPN_PROFILE = "/etc/openvpn/client/client.ovpn"


def container_name(topo: Topology, role: str, replica: int | None = None) -> str:
    """`<cluster>-<role>` or `<cluster>-<role>-<n>`."""
    base = f"{topo.cluster}-{role}"
    return base if replica is None else f"{base}-{replica}"


def _labels(topo: Topology, role: str) -> dict[str, str]:
    return {LABEL_CLUSTER: topo.cluster, LABEL_ROLE: role}


def app_host_port(topo: Topology, replica: int) -> int:
    """The host port replica `replica` (1-based) publishes the app on."""
    return topo.app.port + replica - 1


NEXT_SUFFIX = "-next"
NEXT_PORT_OFFSET = 100  # the port slot of a replica's stand-in during `deploy`


def app_next_port(topo: Topology, replica: int) -> int:
    """The host port of replica `replica`'s stand-in container during a deploy."""
    return app_host_port(topo, replica) + NEXT_PORT_OFFSET


def app_backends(topo: Topology) -> list[str]:
    """`address:port` of every app container, in host order then replica order."""
    return [
        f"{host.address}:{app_host_port(topo, n)}"
        for host in topo.app_hosts
        for n in range(1, topo.app.replicas + 1)
    ]


def db_proxy_host(topo: Topology) -> Host | None:
    """The host whose Nginx `stream` proxy carries the apps to MariaDB (None if direct)."""
    return topo.vpn_host


def db_endpoint(topo: Topology) -> tuple[str, int]:
    """Where the app containers connect for MariaDB: the proxy, or the database itself."""
    proxy = db_proxy_host(topo)
    return (proxy.address if proxy else topo.database.host), topo.database.port


def _secret_env(env: dict[str, str], secrets: dict[str, SecretFile], variable: str,
                value: SecretStr) -> None:
    name = variable.lower()
    target = f"{SECRETS_DIR}/{name}"
    env[f"{variable}_FILE"] = target
    secrets[name] = SecretFile(target, value)


def app_specs(topo: Topology, host: Host, image: str | None = None) -> list[ContainerSpec]:
    """The `app.replicas` app containers of one app host (of `image`, default `app.image`)."""
    app = topo.app
    db_host, db_port = db_endpoint(topo)
    check = app.healthcheck
    probe = (
        "import sys, urllib.request; "
        f"urllib.request.urlopen('http://127.0.0.1:{app.port}{check.path}', "
        f"timeout={check.timeout:g}); sys.exit(0)"
    )
    specs = []
    for n in range(1, app.replicas + 1):
        env = {
            "GUNICORN_BIND": f"0.0.0.0:{app.port}",  # the image's gunicorn.conf.py reads it
            "SURVEY_DB_HOST": db_host,
            "SURVEY_DB_PORT": str(db_port),
            "SURVEY_DB_NAME": topo.database.name,
            "SURVEY_DB_USER": topo.database.user,
            "SURVEY_REDIS_HOST": topo.redis_host.address,
            "SURVEY_REDIS_PORT": str(topo.redis.port),
            "SURVEY_TRUST_PROXY_HOPS": "1",
            "SURVEY_SERVED_BY": f"{host.name}-app-{n}",
        }
        secrets: dict[str, SecretFile] = {}
        _secret_env(env, secrets, "SURVEY_DB_PASSWORD", topo.database.password)
        _secret_env(env, secrets, "SURVEY_REDIS_PASSWORD", topo.redis.password)
        for variable, value in sorted(app.env.items()):
            _secret_env(env, secrets, variable, value)
        specs.append(with_hash(ContainerSpec(
            name=container_name(topo, "app", n),
            image=image or app.image,
            env=dict(sorted(env.items())),
            secret_files=secrets,
            ports=(PortBinding(host.address, app_host_port(topo, n), app.port),),
            network=topo.cluster,
            network_aliases=(f"app-{n}",),
            healthcheck=Healthcheck(("CMD", "python3", "-c", probe), check.interval,
                                    check.timeout, check.retries),
            labels=_labels(topo, "app"),
        )))
    return specs


def next_app_spec(topo: Topology, spec: ContainerSpec, replica: int) -> ContainerSpec:
    """The stand-in of an app container during a deploy: `<name>-next` on the next port."""
    import dataclasses

    address = spec.ports[0].host_ip
    return with_hash(dataclasses.replace(
        spec, name=spec.name + NEXT_SUFFIX,
        ports=(PortBinding(address, app_next_port(topo, replica), topo.app.port),)))


def redis_conf(topo: Topology) -> SecretStr:
    """redis.conf with the password (a secret file: the password is never in argv)."""
    password = topo.redis.password.get_secret_value()
    return SecretStr(
        f"port {REDIS_CONTAINER_PORT}\nbind 0.0.0.0\nprotected-mode yes\n"
        f"requirepass {password}\ndir /data\nappendonly yes\nappendfsync everysec\n"
    )


def redis_spec(topo: Topology) -> ContainerSpec:
    """Redis on the redis host: password from a secret config file, data in a volume."""
    conf = f"{SECRETS_DIR}/redis.conf"
    return with_hash(ContainerSpec(
        name=container_name(topo, "redis"),
        image=topo.redis.image,
        entrypoint=("redis-server",),
        command=(conf,),
        secret_files={"redis.conf": SecretFile(conf, redis_conf(topo))},
        ports=(PortBinding(topo.redis_host.address, topo.redis.port, REDIS_CONTAINER_PORT),),
        volumes=(Mount(f"{topo.cluster}-redis-data", "/data"),),
        network=topo.cluster,
        network_aliases=("redis",),
        # An unauthenticated PING answers NOAUTH: alive, and no password in argv.
        healthcheck=Healthcheck(
            ("CMD-SHELL", f"redis-cli -p {REDIS_CONTAINER_PORT} ping | grep -qE 'PONG|NOAUTH'"),
            2.0, 2.0, 15),
        labels=_labels(topo, "redis"),
    ))


def _nginx(topo: Topology, role: str, host: Host, http: bool, stream: bool,
           backends: list[str] | None = None) -> ContainerSpec:
    from survey_ctl.specs.nginx import render_nginx_conf

    ports = []
    if http:
        ports.append(PortBinding("0.0.0.0", topo.lb.port, NGINX_HTTP_PORT))  # noqa: S104
    if stream:
        port = topo.database.port
        ports.append(PortBinding(host.address, port, port))
    return with_hash(ContainerSpec(
        name=container_name(topo, role),
        image=topo.lb.image,
        command=("nginx", "-c", NGINX_CONF, "-g", "daemon off;"),
        config_files={"nginx.conf": ConfigFile(
            NGINX_CONF, render_nginx_conf(topo, http=http, stream=stream,
                                                 backends=backends),
            reload=("nginx", "-c", NGINX_CONF, "-s", "reload"),
            check=("nginx", "-t", "-q", "-c", NGINX_CONF),
        )},
        ports=tuple(ports),
        network=topo.cluster,
        network_aliases=(role,),
        # Docker runs the first check one interval after the start: a short interval
        # keeps `up` from waiting on it (the check is a signal 0, nearly free).
        healthcheck=Healthcheck(("CMD-SHELL", "kill -0 \"$(cat /run/nginx.pid)\""),
                                2.0, 3.0, 3),
        labels=_labels(topo, role),
    ))


def nginx_spec(topo: Topology, backends: list[str] | None = None) -> ContainerSpec:
    """Nginx on the lb host: the HTTP balancer, plus the MariaDB proxy if vpn is here.

    `backends` (`address:port`) replaces `app_backends(topo)` while a deploy swaps them.
    """
    proxy = db_proxy_host(topo)
    here = proxy is not None and proxy.name == topo.lb_host.name
    return _nginx(topo, "nginx", topo.lb_host, http=True, stream=here, backends=backends)


def dbproxy_spec(topo: Topology) -> ContainerSpec | None:
    """The MariaDB proxy as its own Nginx, when the vpn host is not the lb host."""
    proxy = db_proxy_host(topo)
    if proxy is None or proxy.name == topo.lb_host.name:
        return None
    return _nginx(topo, "dbproxy", proxy, http=False, stream=True)


def vpn_spec(topo: Topology, profile: SecretStr) -> ContainerSpec | None:
    """The OpenVPN client on the vpn host (None when `database.via` is direct).

    `profile` is the content of `vpn.client_config` (see `read_vpn_profile`).
    """
    if topo.vpn is None or topo.vpn_host is None:
        return None
    interface = topo.vpn.interface
    return with_hash(ContainerSpec(
        name=container_name(topo, "vpn"),
        image=topo.vpn.image,
        command=("openvpn", "--config", VPN_PROFILE, "--dev", interface),
        secret_files={"client.ovpn": SecretFile(VPN_PROFILE, profile)},
        network_mode="host",
        cap_add=("NET_ADMIN",),
        devices=("/dev/net/tun",),
        # A 2 s interval (as for Nginx and Redis): `up` waits for the first check.
        healthcheck=Healthcheck(("CMD-SHELL", f"test -n \"$(ip link show dev {interface} up)\""),
                                2.0, 3.0, 15, start_period=10.0),
        labels=_labels(topo, "vpn"),
    ))


def read_vpn_profile(topo: Topology) -> SecretStr:
    """The VPN client profile's content (the one read from disk, kept out of the builders)."""
    assert topo.vpn is not None
    return SecretStr(topo.vpn.client_config.read_text(encoding="utf-8"))


def cluster_specs(topo: Topology, vpn_profile: SecretStr | None,
                  app_image: str | None = None) -> dict[str, list[ContainerSpec]]:
    """Every host's desired containers, keyed by host name, in topology order.

    `app_image` (the release `deploy` recorded) replaces `app.image` for the apps."""
    specs: dict[str, list[ContainerSpec]] = {host.name: [] for host in topo.hosts}
    specs[topo.redis_host.name].append(redis_spec(topo))
    for host in topo.app_hosts:
        specs[host.name].extend(app_specs(topo, host, app_image))
    if topo.vpn_host is not None:
        assert vpn_profile is not None, "database.via vpn needs the VPN profile"
        vpn = vpn_spec(topo, vpn_profile)
        assert vpn is not None
        specs[topo.vpn_host.name].append(vpn)
        proxy = dbproxy_spec(topo)
        if proxy is not None:
            specs[topo.vpn_host.name].append(proxy)
    specs[topo.lb_host.name].append(nginx_spec(topo))
    return specs


# ---------------------------------------------------------------- firewall (pure data)


def firewall_allowances(topo: Topology, host: Host) -> list[tuple[str, int, tuple[str, ...]]]:
    """(host address, published port, allowed source addresses) for each guarded port."""
    guarded = []
    if "app" in host.roles:
        sources = (topo.lb_host.address,)
        guarded += [(host.address, port(topo, n), sources)
                    for n in range(1, topo.app.replicas + 1)
                    for port in (app_host_port, app_next_port)]
    apps = tuple(dict.fromkeys(h.address for h in topo.app_hosts))
    if host.name == topo.redis_host.name:
        guarded.append((host.address, topo.redis.port, apps))
    proxy = db_proxy_host(topo)
    if proxy is not None and proxy.name == host.name:
        guarded.append((host.address, topo.database.port, apps))
    return guarded


def firewall_chain(topo: Topology) -> str:
    """The iptables chain holding this cluster's rules (at most 28 characters)."""
    return f"SURVEYCTL-{topo.cluster}"[:28]


def firewall_rules(topo: Topology, host: Host) -> list[tuple[str, ...]]:
    """iptables commands (argv) that restrict the host's published ports to their peers.

    Run them in order as root; re-running replaces the chain's rules (idempotent). The
    first command may fail when the chain exists already: ignore that failure. The last
    rule carries `firewall_marker` of the others in a comment: a chain that shows it
    (`iptables -S`) is current.
    """
    chain = firewall_chain(topo)
    ipt = ("iptables", "-w")
    rules: list[tuple[str, ...]] = [
        (*ipt, "-N", chain),
        (*ipt, "-F", chain),
        (*ipt, "-A", chain, "-i", "docker0", "-j", "RETURN"),
        (*ipt, "-A", chain, "-i", "br-+", "-j", "RETURN"),
    ]
    for address, port, sources in firewall_allowances(topo, host):
        match = ("-p", "tcp", "-m", "conntrack", "--ctorigdst", address,
                 "--ctorigdstport", str(port), "--ctdir", "ORIGINAL")
        rules += [(*ipt, "-A", chain, *match, "-s", source, "-j", "RETURN") for source in sources]
        rules.append((*ipt, "-A", chain, *match, "-j", "DROP"))
    marker = firewall_marker(rules)
    rules.append((*ipt, "-A", chain, "-m", "comment", "--comment", marker, "-j", "RETURN"))
    return rules


def firewall_marker(rules: list[tuple[str, ...]]) -> str:
    """`surveyctl <hash>`: the comment of a chain's last rule, naming all rules before it."""
    digest = hashlib.sha256(json.dumps(rules).encode()).hexdigest()[:16]
    return f"surveyctl {digest}"


def firewall_jump(topo: Topology) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(check, insert): run `insert` only when `check` fails, to jump once from DOCKER-USER."""
    chain = firewall_chain(topo)
    return (("iptables", "-w", "-C", "DOCKER-USER", "-j", chain),
            ("iptables", "-w", "-I", "DOCKER-USER", "1", "-j", chain))
