"""The client side of a connection: one sync channel with fedflow's limits, and TLS when asked."""

from __future__ import annotations

from typing import Any

import grpc

from ..limits import DEFAULT_LIMITS, Limits
from . import security
from .options import channel_options

__all__ = ["open_channel"]

_RECONNECT = [("grpc.initial_reconnect_backoff_ms", 200), ("grpc.min_reconnect_backoff_ms", 200),
              ("grpc.max_reconnect_backoff_ms", 2000)]


def open_channel(address: str, *, tls: Any = None, limits: Limits | None = None) -> grpc.Channel:
    """A sync channel to `address` with fedflow's limits; mutual TLS when `tls` is given."""
    options = channel_options(limits or DEFAULT_LIMITS) + _RECONNECT
    if security.tls_config(tls) is None:
        return grpc.insecure_channel(address, options=options)
    credentials, extra = security.channel_credentials(tls)
    return grpc.secure_channel(address, credentials, options=options + extra)
