"""nginx.conf for the lb (and the MariaDB proxy), rendered from the packaged Jinja2 template.

The template is `survey_ctl/templates/nginx.conf.j2`, package data, so an installed
`surveyctl` finds it; `stacks/nginx/nginx.conf.j2` is a symlink to it for readers of
the stacks/ layout. The nginx image (stacks/nginx/Dockerfile) carries no config of
ours: `up` uploads the rendered file and mounts its folder.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import jinja2

    from survey_ctl.config import Topology

TEMPLATE = "nginx.conf.j2"
ALGORITHMS = {"round_robin": None, "least_conn": "least_conn", "ip_hash": "ip_hash"}


@cache
def _template() -> jinja2.Template:
    import jinja2

    source = resources.files("survey_ctl").joinpath("templates", TEMPLATE).read_text("utf-8")
    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # noqa: S701 - an nginx config, not HTML
        keep_trailing_newline=True,
        trim_blocks=True, lstrip_blocks=True,
    )
    return env.from_string(source)


def render_nginx_conf(topo: Topology, http: bool = True, stream: bool | None = None,
                      backends: list[str] | None = None) -> str:
    """The nginx.conf text: the HTTP balancer (`http`) and/or the MariaDB proxy (`stream`).

    `stream` defaults to: the vpn host is the lb host (the proxy lives in the lb's Nginx).
    """
    from survey_ctl.specs.cluster import app_backends, db_proxy_host

    proxy = db_proxy_host(topo)
    if stream is None:
        stream = proxy is not None and proxy.name == topo.lb_host.name
    backends = app_backends(topo) if backends is None else backends
    return _template().render(
        cluster=topo.cluster,
        http=http,
        stream=stream,
        algorithm=ALGORITHMS[topo.lb.algorithm],
        backends=backends,
        tries=max(1, min(len(backends), 3)),
        database=topo.database,
        db_clients=list(dict.fromkeys(h.address for h in topo.app_hosts)),
    )
