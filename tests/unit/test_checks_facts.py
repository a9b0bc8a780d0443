"""Pure parsers of survey_ctl.checks.facts, on samples of real output."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from survey_ctl.checks.facts import (
    ContainerFacts,
    LinkStats,
    Route,
    VpnLog,
    container_facts,
    parse_docker_time,
    parse_http_head,
    parse_ip_addr,
    parse_ip_link,
    parse_mysql_greeting,
    parse_openvpn_log,
    parse_resp_replies,
    parse_route,
    parse_sections,
    redact,
    redis_info,
    resp_command,
)

INSPECT_APP = {
    "Id": "c1af161ff9d99e7adb6ecf6acc543b79479116f31a019e19359046c160048902",
    "Created": "2026-12-03T19:33:44.786407738Z",
    "Name": "/pesquisa-app-1",
    "RestartCount": 2,
    "Image": "sha256:0219091938",
    "State": {"Status": "running", "Running": True, "Paused": False, "Restarting": False,
              "OOMKilled": False, "Dead": False, "Pid": 14872, "ExitCode": 0, "Error": "",
              "StartedAt": "2026-12-03T19:33:45.39629162Z",
              "FinishedAt": "0001-01-01T00:00:00Z",
              "Health": {"Status": "healthy", "FailingStreak": 0, "Log": []}},
    "Config": {"Image": "pesquisa-app:latest",
               "Labels": {"surveyctl.cluster": "pesquisa", "surveyctl.role": "app",
                          "surveyctl.spec-hash": "abc"}},
}
INSPECT_EXITED = {
    "Name": "/pesquisa-vpn",
    "RestartCount": 0,
    "Image": "sha256:99",
    "State": {"Status": "exited", "Running": False, "ExitCode": 143,
              "StartedAt": "2026-12-03T19:00:00.5Z", "FinishedAt": "2026-12-03T19:30:00Z"},
    "Config": {"Image": "surveyctl-lab/openvpn:latest",
               "Labels": {"surveyctl.cluster": "pesquisa", "surveyctl.role": "vpn"}},
}

IP_LINK_TUN = """\
7: tun0: <POINTOPOINT,MULTICAST,NOARP,UP,LOWER_UP> mtu 1500 qdisc fq_codel state UNKNOWN mode DEFAULT group default qlen 500
    link/none 
    RX:  bytes packets errors dropped  missed   mcast           
         12345      67      0       0       0       0 
    TX:  bytes packets errors dropped carrier collsns           
         23456      89      0       0       0       0 
"""  # noqa: E501, W291 - verbatim iproute2 6.1 output
IP_LINK_OLD = """\
4: tun0: <POINTOPOINT,MULTICAST,NOARP> mtu 1500 qdisc noop state DOWN mode DEFAULT group default qlen 100
    link/none
    RX: bytes  packets  errors  dropped overrun mcast
    0          0        0       0       0       0
    TX: bytes  packets  errors  dropped carrier collsns
    0          0        0       0       0       0
"""  # noqa: E501 - iproute2 before 5.x
IP_LINK_VETH = ("12: eth0@if13: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP "
                "mode DEFAULT group default\n    link/ether 02:42:ac:1f:38:0a brd "
                "ff:ff:ff:ff:ff:ff link-netnsid 0\n")

OPENVPN_LOG = """\
2026-12-03T19:40:01.100000000Z 2026-12-03 19:40:01 OpenVPN 2.6.3 x86_64-pc-linux-gnu [SSL (OpenSSL)]
2026-12-03T19:40:01.200000000Z 2026-12-03 19:40:01 TCP/UDP: Preserving recently used remote address: [AF_INET]172.31.56.20:1194
2026-12-03T19:40:01.400000000Z 2026-12-03 19:40:01 [server] Peer Connection Initiated with [AF_INET]172.31.56.20:1194
2026-12-03T19:40:02.500000000Z 2026-12-03 19:40:02 TUN/TAP device tun0 opened
2026-12-03T19:40:02.600000000Z 2026-12-03 19:40:02 net_addr_v4_add: 10.8.0.2/24 dev tun0
2026-12-03T19:40:02.700000000Z 2026-12-03 19:40:02 Initialization Sequence Completed
"""  # noqa: E501


def test_docker_times() -> None:
    assert parse_docker_time("2026-12-03T19:33:45.39629162Z") == datetime(
        2026, 12, 3, 19, 33, 45, 396291, tzinfo=UTC)
    assert parse_docker_time("2026-12-03T19:33:45Z") == datetime(2026, 12, 3, 19, 33, 45,
                                                                 tzinfo=UTC)
    assert parse_docker_time("2026-12-03T21:33:45.5+02:00") == datetime(
        2026, 12, 3, 19, 33, 45, 500000, tzinfo=UTC)
    assert parse_docker_time("0001-01-01T00:00:00Z") is None
    assert parse_docker_time("") is None
    assert parse_docker_time("yesterday") is None


def test_container_facts_of_a_running_healthy_app() -> None:
    now = datetime(2026, 12, 3, 19, 43, 45, 396291, tzinfo=UTC)
    assert container_facts("app1", INSPECT_APP, now) == ContainerFacts(
        host="app1", name="pesquisa-app-1", role="app", state="running", health="healthy",
        image="pesquisa-app:latest", image_id="sha256:0219091938",
        started_at=datetime(2026, 12, 3, 19, 33, 45, 396291, tzinfo=UTC), uptime_s=600.0,
        restarts=2, exit_code=None, expected=True)


def test_container_facts_of_an_exited_container() -> None:
    facts = container_facts("lb", INSPECT_EXITED, datetime.now(UTC))
    assert (facts.state, facts.health, facts.uptime_s, facts.exit_code, facts.role) == (
        "exited", None, None, 143, "vpn")


def test_sections_of_the_host_script() -> None:
    text = ("\n@@surveyctl-section clock@@\n1796326501\n\n@@surveyctl-rc 0@@\n"
            "\n@@surveyctl-section docker@@\n\"20.10.24\"\n\n@@surveyctl-rc 0@@\n"
            "\n@@surveyctl-section link@@\nDevice \"tun0\" does not exist.\n\n@@surveyctl-rc 1@@\n"
            "\n@@surveyctl-section containers@@\n[]\n@@surveyctl-rc 0@@\n")
    assert parse_sections(text) == {
        "clock": (0, "1796326501"),
        "docker": (0, '"20.10.24"'),
        "link": (1, 'Device "tun0" does not exist.'),
        "containers": (0, "[]"),
    }


def test_ip_link() -> None:
    assert parse_ip_link(IP_LINK_TUN) == LinkStats(
        "tun0", ("POINTOPOINT", "MULTICAST", "NOARP", "UP", "LOWER_UP"),
        rx_bytes=12345, tx_bytes=23456, rx_packets=67, tx_packets=89)
    old = parse_ip_link(IP_LINK_OLD)
    assert old == LinkStats("tun0", ("POINTOPOINT", "MULTICAST", "NOARP"), 0, 0, 0, 0)
    assert not old.up
    veth = parse_ip_link(IP_LINK_VETH)
    assert (veth.name, veth.up, veth.rx_bytes) == ("eth0", True, None)
    assert parse_ip_link('Device "tun0" does not exist.') is None
    assert parse_ip_link("") is None


def test_ip_addr() -> None:
    assert parse_ip_addr("7: tun0    inet 10.8.0.2/24 scope global tun0\\       valid_lft "
                         "forever preferred_lft forever") == "10.8.0.2/24"
    assert parse_ip_addr("7: tun0    inet 10.8.0.6 peer 10.8.0.5/32 scope global tun0") == (
        "10.8.0.6 peer 10.8.0.5/32")
    assert parse_ip_addr("7: tun0    inet6 fe80::1/64 scope link") is None
    assert parse_ip_addr("") is None


def test_route() -> None:
    assert parse_route("10.8.0.1 dev tun0 src 10.8.0.2 uid 1000 \n    cache ") == Route(
        dev="tun0", via=None, src="10.8.0.2")
    assert parse_route("10.8.0.1 via 172.31.56.1 dev eth0 src 172.31.56.10 uid 0") == Route(
        dev="eth0", via="172.31.56.1", src="172.31.56.10")
    assert parse_route("RTNETLINK answers: Network is unreachable") is None
    assert parse_route("") is None


def test_openvpn_log_connected() -> None:
    assert parse_openvpn_log(OPENVPN_LOG.splitlines()) == VpnLog(
        peer="172.31.56.20:1194",
        connected_at=datetime(2026, 12, 3, 19, 40, 2, 700000, tzinfo=UTC),
        connected=True, last_event="Initialization Sequence Completed")


def test_openvpn_log_after_a_restart() -> None:
    lines = [*OPENVPN_LOG.splitlines(),
             "2026-12-03T19:50:00.000000000Z 2026-12-03 19:50:00 [server] Inactivity timeout "
             "(--ping-restart), restarting",
             "2026-12-03T19:50:00.100000000Z 2026-12-03 19:50:00 SIGUSR1[soft,ping-restart] "
             "received, process restarting"]
    log = parse_openvpn_log(lines)
    assert log.connected is False
    assert log.peer == "172.31.56.20:1194"
    assert log.last_event == "SIGUSR1[soft,ping-restart] received, process restarting"
    assert parse_openvpn_log([]) == VpnLog()


def test_http_head() -> None:
    data = (b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: application/json\r\n"
            b"X-Served-By: app1-app-1\r\n\r\n{\"status\":\"ok\"}")
    status, headers = parse_http_head(data)
    assert status == 200
    assert headers["x-served-by"] == "app1-app-1"
    assert parse_http_head(b"HTTP/1.0 502 Bad Gateway\r\n\r\n") == (502, {})
    with pytest.raises(ValueError, match="not an HTTP response"):
        parse_http_head(b"SSH-2.0-OpenSSH\r\n")


def test_mysql_greeting() -> None:
    payload = b"\x0a" + b"10.11.6-MariaDB-0+deb12u1\x00" + b"\x01\x00\x00\x00abcdefgh\x00"
    packet = len(payload).to_bytes(3, "little") + b"\x00" + payload
    assert parse_mysql_greeting(packet) == ("10.11.6-MariaDB-0+deb12u1", None)
    payload = b"\x0a" + b"5.5.5-10.11.6-MariaDB\x00" + b"\x01\x00\x00\x00abcdefgh\x00"
    packet = len(payload).to_bytes(3, "little") + b"\x00" + payload
    assert parse_mysql_greeting(packet) == ("10.11.6-MariaDB", None)
    message = b"Host '10.8.0.2' is not allowed to connect to this MariaDB server"
    error = b"\xff" + (1130).to_bytes(2, "little") + message
    assert parse_mysql_greeting(len(error).to_bytes(3, "little") + b"\x00" + error) == (
        None, "(1130) " + message.decode())
    assert parse_mysql_greeting(b"") == (None, "the server closed the connection without a "
                                         "greeting")
    assert parse_mysql_greeting(b"\x05\x00\x00\x00HELLO") == (None, "not a MariaDB greeting")


def test_resp() -> None:
    assert resp_command("AUTH", "pässword") == b"*2\r\n$4\r\nAUTH\r\n$9\r\np\xc3\xa4ssword\r\n"
    info = b"# Server\r\nredis_version:7.0.15\r\nuptime_in_seconds:42\r\n"
    data = b"+OK\r\n+PONG\r\n$%d\r\n%s\r\n" % (len(info), info)
    ok, pong, text = parse_resp_replies(data, 3)
    assert (ok, pong) == ("OK", "PONG")
    assert redis_info(text) == {"redis_version": "7.0.15", "uptime_in_seconds": "42"}
    [denied] = parse_resp_replies(b"-WRONGPASS invalid username-password pair\r\n", 1)
    assert isinstance(denied, RuntimeError)
    assert str(denied) == "WRONGPASS invalid username-password pair"
    assert parse_resp_replies(b"$-1\r\n:5\r\n", 2) == [None, "5"]
    with pytest.raises(ValueError, match="got 1 of 3"):
        parse_resp_replies(b"+OK\r\n+PO", 3)
    with pytest.raises(ValueError, match="got 2 of 3"):
        parse_resp_replies(data[:-10], 3)


def test_redact() -> None:
    assert redact("login failed for s3cret and s3cret", ["s3cret", ""]) == (
        "login failed for *** and ***")
    assert redact(None, ["x"]) is None
