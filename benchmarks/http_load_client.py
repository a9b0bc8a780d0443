"""A small HTTP load client, standard library only, so it also runs on a host over SSH
(`BENCH_ARGS = {…}` + this file piped to `ssh HOST python3 -`): keep-alive connections in threads,
bounded in time and count; prints one JSON line (req/s, count, bad statuses, errors,
p50/p99 in seconds).

    python3 http_load_client.py URL [--method POST --body B] [--cookie C]
        [--connections 8] [--duration 10] [--max-requests 20000]
"""

from __future__ import annotations

import argparse
import http.client
import json
import threading
import time
import urllib.parse


def percentile(values: list[float], pct: float) -> float:
    """The `pct` percentile of `values`, linearly interpolated (0 when empty)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def run(url: str, method: str, body: str, cookie: str, connections: int, duration: float,
        max_requests: int) -> dict:
    """Load `url` from `connections` threads; the figures."""
    parts = urllib.parse.urlsplit(url)
    path = parts.path or "/"
    headers = {"Cookie": cookie} if cookie else {}
    if method == "POST":
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    latencies: list[float] = []
    counts = {"bad": 0, "errors": 0}
    lock = threading.Lock()
    deadline = time.monotonic() + duration
    budget = [max_requests]

    def worker() -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=10)
        while time.monotonic() < deadline:
            with lock:
                if budget[0] <= 0:
                    break
                budget[0] -= 1
            started = time.perf_counter()
            try:
                conn.request(method, path, body=body if method == "POST" else None,
                             headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                with lock:
                    counts["errors"] += 1
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=10)
                continue
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                if status >= 400:
                    counts["bad"] += 1
        conn.close()

    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - started
    return {"rps": len(latencies) / wall if wall else 0.0, "requests": len(latencies),
            "bad": counts["bad"], "socket_errors": counts["errors"],
            "p50": percentile(latencies, 50), "p99": percentile(latencies, 99)}


def main() -> None:
    """CLI: one load run; JSON on stdout. Piped to `python3 -`, the arguments come as a
    `BENCH_ARGS` dict prepended to the script (a session cookie stays out of argv)."""
    given = globals().get("BENCH_ARGS")
    if given:
        print(json.dumps(run(**given)))
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--method", default="GET")
    parser.add_argument("--body", default="")
    parser.add_argument("--cookie", default="")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--max-requests", type=int, default=20000)
    args = parser.parse_args()
    print(json.dumps(run(args.url, args.method, args.body, args.cookie, args.connections,
                         args.duration, args.max_requests)))


if __name__ == "__main__":
    main()
