"""The web path under load: the survey page and submitting an answer, with Debian's wrk.

For each `--target NAME=URL` (e.g. through Nginx with 1 app host, with 2, and one
backend directly) it signs a fresh respondent up (one signup per target, well under
the app's limit), reads the questionnaire's CSRF token, then runs wrk twice, bounded
in time (`--duration`) and count (`--max-requests`, enforced by the Lua script):
`GET /survey` (logged in) and `POST /survey` (a valid answer; the account's one
editable response is rewritten each time, 303 expected). Requests/s, p50 and p99 go to
stdout and into docs/benchmarks.md. Only loopback, this machine's benchmark bridge
(172.31.59.0/24) and, with `.lab/BENCH-MAY-USE`, the lab's subnets are accepted.

    benchmarks/run web --label loopback \
        --target nginx-1-app=http://172.31.59.1:18080 --target backend=http://172.31.59.1:18000
"""

from __future__ import annotations

import argparse
import html
import http.client
import ipaddress
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "benchmarks"), str(REPO)]
from http_load_client import run as python_load  # noqa: E402

CLIENT = REPO / "benchmarks" / "http_load_client.py"
LAB_PERMIT = REPO / ".lab" / "BENCH-MAY-USE"
LOCAL_NETS = [ipaddress.ip_network(n) for n in ("127.0.0.0/8", "172.31.59.0/24")]
LAB_NET = ipaddress.ip_network("172.31.56.0/24")
FANOUT_NETS = ipaddress.ip_network("172.31.0.0/16")  # fan-out labs: 172.31.(100+N).0/24
LUA = """
local limit = %(limit)d
local count = 0
wrk.method = "%(method)s"
wrk.headers["Cookie"] = "%(cookie)s"
%(body)s
function response(status, headers, body)
  count = count + 1
  if count >= limit then wrk.thread:stop() end
end
"""
_INPUT = re.compile(r"<input\b[^>]*>", re.IGNORECASE)


# ---------------------------------------------------------------- pure helpers


_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def parse_wrk_latency(text: str) -> dict[int, float]:
    """wrk --latency's distribution lines (`  50%   12.34ms`) as {percent: seconds}."""
    found = {}
    for pct, number, unit in re.findall(r"^\s*(\d+)%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M):
        found[int(pct)] = float(number) * _UNITS[unit]
    return found


def parse_wrk(text: str) -> dict[str, float]:
    """Requests/s, request count, errors and p50/p99 (s) from wrk's output."""
    rate = re.search(r"Requests/sec:\s+([\d.]+)", text)
    count = re.search(r"(\d+) requests in", text)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                       text)
    latency = parse_wrk_latency(text)
    return {"rps": float(rate.group(1)) if rate else 0.0,
            "requests": int(count.group(1)) if count else 0,
            "bad": int(bad.group(1)) if bad else 0,
            "socket_errors": sum(int(g) for g in errors.groups()) if errors else 0,
            "p50": latency.get(50, 0.0), "p99": latency.get(99, 0.0)}


def allowed(url: str, lab_ok: bool) -> bool:
    """Loopback and the benchmark bridge always; the lab's subnets only with the permit."""
    host = urllib.parse.urlsplit(url).hostname or ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if any(address in net for net in LOCAL_NETS):
        return True
    fanout = address in FANOUT_NETS and 101 <= address.packed[2] <= 250
    return lab_ok and (address in LAB_NET or fanout)


# ---------------------------------------------------------------- a session


class Browser:
    """Just enough of a browser: one connection target, cookies kept by hand."""

    def __init__(self, base: str) -> None:
        parts = urllib.parse.urlsplit(base)
        self.host, self.port = parts.hostname or "", parts.port or 80
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, form: dict | None = None) -> tuple[int, str]:
        """One request; returns (status, body) and keeps the cookies it sets."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        headers = {"Cookie": self.cookie()} if self.cookies else {}
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form, doseq=True)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        text = response.read().decode("utf-8", "replace")
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]
        conn.close()
        return response.status, text

    def cookie(self) -> str:
        """The Cookie header."""
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())

    def form_fields(self, path: str) -> dict[str, str]:
        """GET a page; its inputs' names and types, plus the CSRF token as `csrf_token`."""
        status, text = self.request("GET", path)
        if status != 200:
            raise SystemExit(f"GET {path}: {status}")
        fields = {}
        for tag in _INPUT.findall(text):
            name = re.search(r'\bname="([^"]*)"', tag)
            kind = re.search(r'\btype="([^"]*)"', tag)
            value = re.search(r'\bvalue="([^"]*)"', tag)
            if name:
                fields[name.group(1)] = (html.unescape(value.group(1)) if name.group(1) ==
                                         "csrf_token" and value else (kind.group(1) if kind
                                                                      else "text"))
        return fields


def respondent(base: str) -> tuple[str, str]:
    """Sign a fresh respondent up at `base`: (Cookie header, urlencoded valid answer)."""
    sys.path.insert(0, str(REPO))
    from tests.app.survey_helpers import VALID as ANSWER  # the app tests' valid answer

    browser = Browser(base)
    fields = browser.form_fields("/signup")
    password = secrets.token_urlsafe(18)
    form = {"csrf_token": fields.pop("csrf_token")}
    for name, kind in fields.items():
        form[name] = f"bench-{secrets.token_hex(6)}@example.com" if kind == "email" else password
    status, _ = browser.request("POST", "/signup", form)
    if status not in (302, 303):
        raise SystemExit(f"signup at {base}: {status}")
    token = browser.form_fields("/survey")["csrf_token"]
    answer = urllib.parse.urlencode({**ANSWER, "csrf_token": token}, doseq=True)
    status, _ = browser.request("POST", "/survey", {**ANSWER, "csrf_token": token})
    if status != 303:
        raise SystemExit(f"a valid answer at {base} got {status}")
    return browser.cookie(), answer


def wrk(base: str, method: str, cookie: str, body: str, args: argparse.Namespace) -> dict:
    """One wrk run against `base`/survey; parsed figures."""
    lua_body = (f'wrk.body = "{body}"\nwrk.headers["Content-Type"] = '
                '"application/x-www-form-urlencoded"') if method == "POST" else ""
    per_thread = max(1, args.max_requests // args.threads)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(LUA % {"limit": per_thread, "method": method, "cookie": cookie,
                            "body": lua_body})
    try:
        done = subprocess.run([args.wrk, "--latency", "-t", str(args.threads), "-c",
                               str(args.connections), "-d", f"{args.duration}s", "--timeout",
                               "10s", "-s", script.name, f"{base}/survey"],
                              capture_output=True, text=True, timeout=args.duration + 60,
                              check=False)
    finally:
        Path(script.name).unlink()
    figures = parse_wrk(done.stdout)
    figures["raw"] = done.stdout
    return figures


def remote_load(topology: Path, host_name: str, base: str, method: str, cookie: str,
                body: str, args: argparse.Namespace) -> dict:
    """The Python client run on a topology host over SSH (strict host keys), e.g. from
    lb against a backend whose port only lb may reach."""
    import json

    from survey_ctl.config import load_topology

    host = load_topology(topology).host(host_name)
    given = {"url": f"{base}/survey", "method": method, "body": body, "cookie": cookie,
             "connections": args.connections, "duration": args.duration,
             "max_requests": args.max_requests}
    source = CLIENT.read_text().replace("from __future__ import annotations\n", "")
    script = f"BENCH_ARGS = {given!r}\n" + source
    ssh = ["ssh", "-i", str(host.ssh.identity_file), "-o",
           f"UserKnownHostsFile={host.ssh.known_hosts}", "-o", "StrictHostKeyChecking=yes",
           "-o", "IdentitiesOnly=yes", "-p", str(host.ssh.port),
           f"{host.ssh.user}@{host.address}", "python3", "-"]
    done = subprocess.run(ssh, input=script, capture_output=True, text=True,
                          timeout=args.duration + 60, check=False)
    if done.returncode != 0:
        raise SystemExit(f"load from {host_name} failed: {done.stderr.strip()[:300]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def one_app_topology(source: Path, target: Path) -> Path:
    """A copy of `source` keeping only its first app host (for "Nginx with 1 app host")."""
    import yaml

    data = yaml.safe_load(source.read_text())
    apps = [h for h in data["hosts"] if "app" in h["roles"]]
    data["hosts"] = [h for h in data["hosts"] if "app" not in h["roles"] or h is apps[0]]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(data, sort_keys=False))
    for name in (".env",):  # secrets are read beside the topology
        if (source.parent / name).exists() and not (target.parent / name).exists():
            (target.parent / name).symlink_to((source.parent / name).resolve())
    return target


def main() -> None:
    """CLI: run the web load on each target and write the report section."""
    from bench_peers import _context, replace_section

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", action="append", metavar="NAME=URL[@HOST]",
                        help="@HOST: run the load from that topology host (Python client)")
    parser.add_argument("--topology", type=Path, help="for @HOST targets")
    parser.add_argument("--signup-url", help="where to sign the respondent up (default: "
                        "each target; sessions live in Redis, shared by every backend)")
    parser.add_argument("--client", choices=["wrk", "python"], default="wrk")
    parser.add_argument("--one-app-topology", nargs=2, type=Path, metavar=("FROM", "TO"),
                        help="only write a copy of FROM with its first app host, then exit")
    parser.add_argument("--label", default="lab")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--max-requests", type=int, default=20000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--wrk", default=shutil.which("wrk") or "/usr/bin/wrk")
    parser.add_argument("--report", type=Path, default=REPO / "docs" / "benchmarks.md")
    args = parser.parse_args()
    if args.one_app_topology:
        print(one_app_topology(*args.one_app_topology))
        return
    if not args.target:
        parser.error("--target is required")
    targets = []
    for given in args.target:
        name, _, rest = given.partition("=")
        url, _, via = rest.partition("@")
        targets.append((name, url.rstrip("/"), via))
    for _, url, _ in targets:
        if not allowed(url, LAB_PERMIT.exists()):
            raise SystemExit(f"{url}: only loopback, 172.31.59.0/24 or (with {LAB_PERMIT}) "
                             "the lab's subnets")
    rows = ["| target | request | req/s | p50 | p99 | requests | non-2xx/3xx | socket errors |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, url, via in targets:
        cookie, answer = respondent((args.signup_url or url).rstrip("/"))
        for method, what in (("GET", "survey page"), ("POST", "submit an answer")):
            if via:
                f = remote_load(args.topology, via, url, method, cookie, answer, args)
            elif args.client == "python":
                f = python_load(f"{url}/survey", method, answer if method == "POST" else "",
                                cookie, args.connections, args.duration, args.max_requests)
            else:
                f = wrk(url, method, cookie, answer, args)
            row = (f"| {name} | {what} | {f['rps']:.0f} | {f['p50'] * 1000:.1f} ms | "
                   f"{f['p99'] * 1000:.1f} ms | {f['requests']} | {f['bad']} | "
                   f"{f['socket_errors']} |")
            rows.append(row)
            print(row, flush=True)
    body = (f"### Web path ({args.label}; {_context()})\n\n{args.client} "
            f"({args.threads} threads for wrk), {args.connections} connections, at most "
            f"{args.duration} s and {args.max_requests} requests per run (@HOST targets: "
            "the Python client on that host).\n\n" + "\n".join(rows) + "\n")
    report = args.report.read_text() if args.report.exists() else "# Benchmarks\n"
    args.report.write_text(replace_section(report, f"web-{args.label}", body))


if __name__ == "__main__":
    main()
