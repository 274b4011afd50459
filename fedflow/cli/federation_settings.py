"""`fedflow serve` settings for life between machines: how long answers to peer calls are
recorded, and (see `fedflow.grpc.identity`) who may do what.

Flags and the config keys of the same name (flags win)::

    answers_kept = 100000            # --answers-kept: answers to peer calls recorded, at most
    answers_max_age = 604800.0       # --answers-max-age: seconds an answer stays recorded
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from typing import Any

from ..exposed import AnswerLimits
from .config import FEDERATION_KEYS, ConfigError

__all__ = ["FederationSettings", "add_federation_flags", "federation_settings", "from_file"]

@dataclasses.dataclass(frozen=True)
class FederationSettings:
    """The answer limits of one `fedflow serve`."""

    answers: AnswerLimits = dataclasses.field(default_factory=AnswerLimits)


def add_federation_flags(parser: argparse.ArgumentParser) -> None:
    """Add the flags of this module to the `serve` parser."""
    defaults = AnswerLimits()
    parser.add_argument("--answers-kept", metavar="N", type=int,
                        help=f"answers to peer calls recorded, so a retry is not run again ({defaults.max_count})")
    parser.add_argument("--answers-max-age", metavar="S", type=float,
                        help=f"seconds an answer to a peer call stays recorded ({defaults.max_age:g})")


def from_file(raw: dict[str, Any], path: str) -> dict[str, Any]:
    """The keys of this module found in config file `raw` (read from `path`), checked for type."""
    out = {}
    for key in FEDERATION_KEYS:
        if key in raw:
            value = raw[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"config {path}: {key} must be a number, got {value!r}")
            out[key] = value
    return out


def federation_settings(pick: Callable[..., Any]) -> FederationSettings:
    """The settings from `pick(key)` (flag, else config file, else None); ConfigError when one is unusable."""
    given = {field: pick(key) for field, key in (("max_count", "answers_kept"), ("max_age", "answers_max_age"))
             if pick(key) is not None}
    try:
        answers = AnswerLimits(**given)
    except ValueError as exc:
        flag = "--answers-kept" if "max_count" in str(exc) else "--answers-max-age"
        raise ConfigError(f"{flag}: {exc}") from None
    return FederationSettings(answers=answers)
