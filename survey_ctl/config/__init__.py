"""The validated topology: `load_topology(path)` gives a `Topology` or raises `TopologyError`.

Everything other modules need is importable from here; see config.example.yaml for the
meaning of every key.
"""

from survey_ctl.config.loader import (
    TopologyError,
    load_topology,
    read_dotenv,
    starter_topology,
    variables_in,
)
from survey_ctl.config.models import (
    MAX_REPLICAS,
    REDACTED,
    ROLES,
    App,
    Build,
    Database,
    Healthcheck,
    Host,
    LoadBalancer,
    Problem,
    Redis,
    Role,
    SSHOverride,
    SSHSettings,
    Topology,
    Vpn,
)

__all__ = [
    "MAX_REPLICAS",
    "REDACTED",
    "ROLES",
    "App",
    "Build",
    "Database",
    "Healthcheck",
    "Host",
    "LoadBalancer",
    "Problem",
    "Redis",
    "Role",
    "SSHOverride",
    "SSHSettings",
    "Topology",
    "TopologyError",
    "Vpn",
    "load_topology",
    "read_dotenv",
    "starter_topology",
    "variables_in",
]
