"""The channel options both ends of a fedflow connection set."""

from __future__ import annotations

from typing import Any

from ..limits import DEFAULT_LIMITS, Limits

__all__ = ["channel_options"]


def channel_options(limits: Limits = DEFAULT_LIMITS) -> list[tuple[str, Any]]:
    """Channel options for both ends: the message limits of `limits`. (Calls are retried in one
    place, by the caller's transport, so the channel itself retries nothing.)"""
    return [("grpc.max_receive_message_length", limits.max_message_bytes),
            ("grpc.max_send_message_length", limits.max_message_bytes)]
