"""Facts: typed observations of the cluster, and the pure parsers that make them.

Every parser takes raw text or bytes a host gave (`docker inspect` JSON, `ip -s link`,
an OpenVPN log, an HTTP response head, a MariaDB greeting, Redis replies) and returns
a value; none does I/O. `survey_ctl.checks.probes` gathers the raw material.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from survey_ctl.plan import observed_from_inspect

# ---------------------------------------------------------------- the facts


@dataclass(frozen=True)
class HostFacts:
    """One host: reachable or why not, SSH timings and its Docker Engine."""

    name: str
    address: str
    roles: tuple[str, ...]
    error: str | None = None
    hint: str | None = None
    connect_s: float | None = None  # the last time its connection was opened
    latency_s: float | None = None  # a trivial command on the open connection
    docker_version: str | None = None


@dataclass(frozen=True)
class ContainerFacts:
    """One of the cluster's containers on a host (or a desired one that is missing)."""

    host: str
    name: str
    role: str | None
    state: str  # docker's State.Status, or "missing"
    health: str | None = None
    image: str = ""
    image_id: str = ""
    started_at: datetime | None = None
    uptime_s: float | None = None
    restarts: int = 0
    exit_code: int | None = None
    expected: bool = True


@dataclass(frozen=True)
class HttpProbe:
    """One HTTP request: status, the backend that answered (X-Served-By), time taken."""

    status: int | None = None
    served_by: str | None = None
    latency_s: float | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True for a 2xx answer."""
        return self.status is not None and 200 <= self.status < 300


@dataclass(frozen=True)
class BackendFacts:
    """One app backend, probed directly from the lb host, and its share through Nginx."""

    address: str  # host address:published port, as in Nginx's upstream
    host: str
    container: str
    direct: HttpProbe
    via_lb: int = 0  # requests through Nginx it answered


@dataclass(frozen=True)
class BalancerFacts:
    """Nginx on the lb host: requests through it, and each backend."""

    url: str
    requests: tuple[HttpProbe, ...] = ()
    backends: tuple[BackendFacts, ...] = ()
    error: str | None = None

    @property
    def answered(self) -> int:
        """Requests through Nginx that got a 2xx."""
        return sum(probe.ok for probe in self.requests)


@dataclass(frozen=True)
class RedisFacts:
    """Redis as its host sees it: AUTH + PING + INFO over a TCP connection made there."""

    host: str
    endpoint: str
    ping_s: float | None = None
    version: str | None = None
    uptime_s: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class AppProbe:
    """What one app container reaches with its own settings: MariaDB and Redis."""

    host: str
    container: str
    db_connect_s: float | None = None
    db_query_s: float | None = None
    db_version: str | None = None
    migration: int | None = None  # the highest applied version; None: none applied
    db_error: str | None = None
    redis_ping_s: float | None = None
    redis_error: str | None = None
    error: str | None = None  # the probe could not run at all

    @property
    def db_ok(self) -> bool:
        """True when the container logged in to MariaDB and queried it."""
        return self.error is None and self.db_error is None and self.db_query_s is not None

    @property
    def redis_ok(self) -> bool:
        """True when the container's Redis client got PONG."""
        return self.error is None and self.redis_error is None and self.redis_ping_s is not None


@dataclass(frozen=True)
class LinkStats:
    """A network interface from `ip -s link show`."""

    name: str
    flags: tuple[str, ...]
    rx_bytes: int | None = None
    tx_bytes: int | None = None
    rx_packets: int | None = None
    tx_packets: int | None = None

    @property
    def up(self) -> bool:
        """True when the interface is administratively UP (a tun has no carrier flag)."""
        return "UP" in self.flags


@dataclass(frozen=True)
class Route:
    """`ip route get ADDRESS`: the interface and gateway the host would use."""

    dev: str | None = None
    via: str | None = None
    src: str | None = None


@dataclass(frozen=True)
class VpnLog:
    """What the OpenVPN client's log says about its connection."""

    peer: str | None = None
    connected_at: datetime | None = None
    connected: bool = False  # the last event was "Initialization Sequence Completed"
    last_event: str | None = None


@dataclass(frozen=True)
class VpnFacts:
    """The OpenVPN client on the vpn host and the path to MariaDB through it."""

    host: str
    container: str
    interface: str
    database: str  # host:port of MariaDB
    link: LinkStats | None = None
    link_error: str | None = None
    address: str | None = None
    route: Route | None = None
    route_error: str | None = None
    log: VpnLog = field(default_factory=VpnLog)
    db_tcp_s: float | None = None
    db_server: str | None = None
    db_error: str | None = None


# ---------------------------------------------------------------- docker


def parse_docker_time(text: str | None) -> datetime | None:
    """A Docker RFC 3339 timestamp (nanoseconds, `Z`) as an aware datetime; None if unset."""
    if not text or text.startswith("0001-01-01"):
        return None
    match = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?$", text)
    if not match:
        return None
    base, fraction, zone = match.groups()
    micro = (fraction or "0")[:6].ljust(6, "0")
    offset = "+00:00" if zone in (None, "Z") else zone
    return datetime.fromisoformat(f"{base}.{micro}{offset}").astimezone(UTC)


def container_facts(host: str, doc: Mapping[str, Any], now: datetime | None = None,
                    expected: bool = True) -> ContainerFacts:
    """A `ContainerFacts` from one object of `docker inspect` output.

    `now` (the host's clock) gives the uptime of a running container.
    """
    seen = observed_from_inspect(doc)
    state = doc.get("State") or {}
    started = parse_docker_time(state.get("StartedAt"))
    running = seen.state in ("running", "restarting", "paused")
    uptime = (now - started).total_seconds() if (now and started and running) else None
    exit_code = state.get("ExitCode") if not running else None
    return ContainerFacts(
        host=host,
        name=seen.name,
        role=seen.role,
        state=seen.state,
        health=seen.health,
        image=str((doc.get("Config") or {}).get("Image", "")),
        image_id=seen.image_id,
        started_at=started,
        uptime_s=max(uptime, 0.0) if uptime is not None else None,
        restarts=int(doc.get("RestartCount") or 0),
        exit_code=int(exit_code) if isinstance(exit_code, int) else None,
        expected=expected,
    )


_SECTION = re.compile(
    r"@@surveyctl-section (?P<name>[a-z_]+)@@\n(?P<body>.*?)\n?@@surveyctl-rc (?P<rc>\d+)@@",
    re.DOTALL,
)


def parse_sections(text: str) -> dict[str, tuple[int, str]]:
    """The sections of a host script's output: name → (exit code, output)."""
    return {m["name"]: (int(m["rc"]), m["body"].strip("\n")) for m in _SECTION.finditer(text)}


# ---------------------------------------------------------------- ip


def parse_ip_link(text: str) -> LinkStats | None:
    """The first interface of `ip -s link show` output (None when there is none)."""
    lines = text.splitlines()
    header = next((i for i, line in enumerate(lines) if re.match(r"\d+:\s", line)), None)
    if header is None:
        return None
    match = re.match(r"\d+:\s+([^:@\s]+)(?:@\S+)?:\s+<([^>]*)>", lines[header])
    if not match:
        return None
    stats: dict[str, dict[str, int]] = {}
    for i, line in enumerate(lines[header + 1:], start=header + 1):
        kind = re.match(r"\s+(RX|TX):\s+(.*)", line)
        if kind and i + 1 < len(lines):
            names = kind.group(2).split()
            values = lines[i + 1].split()
            if values and all(v.isdigit() for v in values):
                stats[kind.group(1)] = dict(zip(names, map(int, values), strict=False))
    rx, tx = stats.get("RX", {}), stats.get("TX", {})
    return LinkStats(
        name=match.group(1),
        flags=tuple(flag for flag in match.group(2).split(",") if flag),
        rx_bytes=rx.get("bytes"), tx_bytes=tx.get("bytes"),
        rx_packets=rx.get("packets"), tx_packets=tx.get("packets"),
    )


def parse_ip_addr(text: str) -> str | None:
    """The first IPv4 address (CIDR, or `A peer B/N`) of `ip -o addr show` output."""
    for line in text.splitlines():
        match = re.search(r"\binet\s+(\S+)(?:\s+peer\s+(\S+))?", line)
        if match:
            address, peer = match.groups()
            return f"{address} peer {peer}" if peer else address
    return None


def parse_route(text: str) -> Route | None:
    """`ip route get ADDRESS` output as a `Route` (None when the output has no route)."""
    line = next((line for line in text.splitlines() if line.strip()), "")
    if not line or "unreachable" in line.lower() or line.startswith(("RTNETLINK", "Error")):
        return None
    words = line.split()

    def after(key: str) -> str | None:
        return words[words.index(key) + 1] if key in words[:-1] else None

    return Route(dev=after("dev"), via=after("via"), src=after("src"))


# ---------------------------------------------------------------- openvpn


_PEER = re.compile(r"Peer Connection Initiated with (?:\[AF_INET6?\])?(\S+)")
_DOWN_EVENTS = (
    "process restarting", "Restart pause", "Inactivity timeout", "SIGTERM", "SIGUSR1",
    "Connection reset", "TLS Error", "AUTH_FAILED", "Exiting due to fatal error",
)


def parse_openvpn_log(lines: Iterable[str]) -> VpnLog:
    """Peer, connection time and state from `docker logs --timestamps` of the client.

    The time of a line is Docker's timestamp (its first word); OpenVPN's own timestamp,
    if any, follows it and is ignored.
    """
    peer: str | None = None
    connected_at: datetime | None = None
    connected = False
    last_event: str | None = None
    for raw in lines:
        stamp, _, message = raw.partition(" ")
        when = parse_docker_time(stamp)
        if when is None:
            message = raw
        found = _PEER.search(message)
        if found:
            peer = found.group(1)
        if "Initialization Sequence Completed" in message:
            connected, connected_at, last_event = True, when, "Initialization Sequence Completed"
        elif any(event in message for event in _DOWN_EVENTS):
            connected = False
            last_event = _strip_openvpn_time(message)
    return VpnLog(peer=peer, connected_at=connected_at, connected=connected,
                  last_event=last_event)


def _strip_openvpn_time(message: str) -> str:
    return re.sub(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?\s+", "", message.strip())[:200]


# ---------------------------------------------------------------- wire protocols


def parse_http_head(data: bytes) -> tuple[int, dict[str, str]]:
    """Status code and headers (lower-case names) of an HTTP/1.x response."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("iso-8859-1")
    status_line, *header_lines = head.split("\r\n")
    match = re.match(r"HTTP/\d(?:\.\d)?\s+(\d{3})", status_line)
    if not match:
        raise ValueError(f"not an HTTP response: {status_line[:60]!r}")
    headers: dict[str, str] = {}
    for line in header_lines:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return int(match.group(1)), headers


def parse_mysql_greeting(packet: bytes) -> tuple[str | None, str | None]:
    """(server version, None) from a MariaDB/MySQL greeting, or (None, its error text)."""
    if len(packet) < 5:
        return None, "the server closed the connection without a greeting"
    payload = packet[4:4 + int.from_bytes(packet[:3], "little")]
    if payload[:1] == b"\xff":
        message = payload[3:]
        if message[:1] == b"#":  # SQL state marker
            message = message[6:]
        return None, f"({int.from_bytes(payload[1:3], 'little')}) " + message.decode(
            "utf-8", "replace")
    if payload[:1] != b"\x0a":
        return None, "not a MariaDB greeting"
    version = payload[1:].split(b"\0", 1)[0].decode("utf-8", "replace")
    return version.removeprefix("5.5.5-"), None  # MariaDB's prefix for old MySQL clients


def resp_command(*words: str) -> bytes:
    """One Redis command in the RESP wire format (an array of bulk strings)."""
    parts = [f"*{len(words)}\r\n".encode()]
    for word in words:
        data = word.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def parse_resp_replies(data: bytes, count: int) -> list[str | Exception | None]:
    """The first `count` RESP replies in `data`: text, an `Exception` for `-ERR`, None for nil.

    Raises ValueError when `data` holds fewer replies (the connection closed early).
    """
    replies: list[str | Exception | None] = []
    position = 0
    while len(replies) < count:
        end = data.find(b"\r\n", position)
        if end < 0:
            raise ValueError(f"got {len(replies)} of {count} Redis replies")
        kind, line = data[position:position + 1], data[position + 1:end].decode("utf-8", "replace")
        position = end + 2
        if kind in (b"+", b":"):
            replies.append(line)
        elif kind == b"-":
            replies.append(RuntimeError(line))
        elif kind == b"$":
            size = int(line)
            if size < 0:
                replies.append(None)
                continue
            if len(data) < position + size + 2:
                raise ValueError(f"got {len(replies)} of {count} Redis replies")
            replies.append(data[position:position + size].decode("utf-8", "replace"))
            position += size + 2
        else:
            raise ValueError(f"unexpected Redis reply {kind!r}")
    return replies


def redis_info(text: str) -> dict[str, str]:
    """`INFO` output as a dict (`redis_version`, `uptime_in_seconds`, …)."""
    pairs = (line.split(":", 1) for line in text.splitlines() if ":" in line)
    return {key.strip(): value.strip() for key, value in pairs}


# ---------------------------------------------------------------- secrets


def redact(text: str | None, secrets: Sequence[str]) -> str | None:
    """`text` with every secret value replaced by `***` (defence in depth for messages)."""
    if text is None:
        return None
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
