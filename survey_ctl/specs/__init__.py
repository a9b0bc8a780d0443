"""What runs, as data: container specs and rendered configs built from the topology.

Pure builders (no I/O), tested by exact equality; engines (per-host Docker over SSH
today, a Swarm stack later) turn them into actions.
"""

from survey_ctl.specs.cluster import (
    app_backends,
    app_specs,
    cluster_specs,
    container_name,
    db_endpoint,
    db_proxy_host,
    dbproxy_spec,
    firewall_chain,
    firewall_jump,
    firewall_marker,
    firewall_rules,
    nginx_spec,
    read_vpn_profile,
    redis_spec,
    vpn_spec,
)
from survey_ctl.specs.container import (
    LABEL_CLUSTER,
    LABEL_HASH,
    LABEL_ROLE,
    ConfigFile,
    ContainerSpec,
    Healthcheck,
    Mount,
    PortBinding,
    SecretFile,
    canonical_json,
    describe,
    spec_hash,
    with_hash,
)
from survey_ctl.specs.nginx import render_nginx_conf

__all__ = [
    "LABEL_CLUSTER",
    "LABEL_HASH",
    "LABEL_ROLE",
    "ConfigFile",
    "ContainerSpec",
    "Healthcheck",
    "Mount",
    "PortBinding",
    "SecretFile",
    "app_backends",
    "app_specs",
    "canonical_json",
    "cluster_specs",
    "container_name",
    "db_endpoint",
    "db_proxy_host",
    "dbproxy_spec",
    "describe",
    "firewall_chain",
    "firewall_jump",
    "firewall_marker",
    "firewall_rules",
    "nginx_spec",
    "read_vpn_profile",
    "redis_spec",
    "render_nginx_conf",
    "spec_hash",
    "vpn_spec",
    "with_hash",
]
