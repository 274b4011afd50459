"""The channel options both ends of a fedflow connection set."""

from __future__ import annotations

import json
from typing import Any

from ..limits import DEFAULT_LIMITS, Limits

__all__ = ["channel_options"]


def channel_options(limits: Limits = DEFAULT_LIMITS,
                    retry_services: tuple[str, ...] = ()) -> list[tuple[str, Any]]:
    """Channel options for both ends: the message limits of `limits`; a short UNAVAILABLE
    retry policy on `retry_services` (full names, e.g. "fedflow.v1.PeerService")."""
    options: list[tuple[str, Any]] = [
        ("grpc.max_receive_message_length", limits.max_message_bytes),
        ("grpc.max_send_message_length", limits.max_message_bytes),
    ]
    if retry_services:
        policy = {"maxAttempts": 3, "initialBackoff": "0.05s", "maxBackoff": "0.5s",
                  "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}
        config = {"methodConfig": [{"name": [{"service": s} for s in retry_services],
                                    "retryPolicy": policy}]}
        options.append(("grpc.service_config", json.dumps(config)))
    return options
