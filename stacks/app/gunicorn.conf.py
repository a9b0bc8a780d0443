"""gunicorn settings for the survey app image (each overridable by a GUNICORN_* variable)."""

import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
worker_class = "gthread"
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
keepalive = 5
max_requests = 5000
max_requests_jitter = 500
preload_app = True  # a bad setting stops the container at start, not in a worker
worker_tmp_dir = "/dev/shm"  # noqa: S108 - heartbeat files off the overlay filesystem
control_socket_disable = True  # gunicorn 27 control socket: unused here, and $HOME is /nonexistent
# The app trusts exactly SURVEY_TRUST_PROXY_HOPS proxies (werkzeug ProxyFix); gunicorn
# itself trusts forwarded headers from nobody else.
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")
access_log_format = ('%(h)s fwd=%({x-forwarded-for}i)s "%(m)s %(U)s %(H)s" %(s)s %(B)s '
                     '%(M)sms "%(a)s"')  # path without the query string
