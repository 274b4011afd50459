"""The channel options both ends of a fedflow connection set.

Connections stay healthy across quiet links and long lives: each end pings an idle
connection every `KEEPALIVE_SECONDS` and drops it when a ping goes unanswered for
`KEEPALIVE_TIMEOUT_SECONDS` (a cut link or a silently dropped connection is noticed, not
waited on), and a server closes each connection after `MAX_CONNECTION_AGE_SECONDS`,
letting calls on it finish within `MAX_CONNECTION_AGE_GRACE_SECONDS` (clients reconnect,
so they follow a peer that moved and load spreads again).
"""

from __future__ import annotations

from typing import Any

from ..limits import DEFAULT_LIMITS, Limits

__all__ = ["KEEPALIVE_SECONDS", "KEEPALIVE_TIMEOUT_SECONDS", "MAX_CONNECTION_AGE_GRACE_SECONDS",
           "MAX_CONNECTION_AGE_SECONDS", "channel_options", "server_options"]

KEEPALIVE_SECONDS = 20.0
KEEPALIVE_TIMEOUT_SECONDS = 10.0
MAX_CONNECTION_AGE_SECONDS = 30 * 60.0
MAX_CONNECTION_AGE_GRACE_SECONDS = 60.0


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def channel_options(limits: Limits = DEFAULT_LIMITS) -> list[tuple[str, Any]]:
    """Channel options for both ends: the message limits of `limits` and keepalive pings. (Calls
    are retried in one place, by the caller's transport, so the channel itself retries nothing.)"""
    return [("grpc.max_receive_message_length", limits.max_message_bytes),
            ("grpc.max_send_message_length", limits.max_message_bytes),
            ("grpc.keepalive_time_ms", _ms(KEEPALIVE_SECONDS)),
            ("grpc.keepalive_timeout_ms", _ms(KEEPALIVE_TIMEOUT_SECONDS)),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.max_pings_without_data", 0)]


def server_options(limits: Limits = DEFAULT_LIMITS) -> list[tuple[str, Any]]:
    """A server's options: those of `channel_options`, the client pings allowed (a client pinging
    at `KEEPALIVE_SECONDS` is never told it pings too often), and the maximum connection age."""
    return [*channel_options(limits),
            ("grpc.http2.min_ping_interval_without_data_ms", _ms(KEEPALIVE_SECONDS / 2)),
            ("grpc.http2.min_time_between_pings_ms", _ms(KEEPALIVE_SECONDS / 2)),
            ("grpc.http2.max_ping_strikes", 0),
            ("grpc.max_connection_age_ms", _ms(MAX_CONNECTION_AGE_SECONDS)),
            ("grpc.max_connection_age_grace_ms", _ms(MAX_CONNECTION_AGE_GRACE_SECONDS))]
