"""PyMySQL through an SSH tunnel (a direct-tcpip channel from `HostConnection.open_tunnel`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import paramiko
    import pymysql


def connect_through(channel: paramiko.Channel, **kwargs: Any) -> pymysql.connections.Connection:
    """A PyMySQL connection speaking over `channel` instead of its own TCP socket.

    `defer_connect=True` builds the connection without dialling; `connect(sock=…)` then
    runs the MySQL handshake over the channel (which PyMySQL uses like a socket:
    `settimeout`, `makefile("rb")`, `sendall`, `close`). Do not use `ping(reconnect=True)`
    on it: a reconnect would dial `host` directly, outside the tunnel.
    """
    import pymysql

    connection = pymysql.connect(defer_connect=True, **kwargs)
    connection.connect(sock=channel)
    return connection
