"""`fedflow serve` settings for life between machines: how long answers to peer calls are
recorded, who may do what (see `fedflow.grpc.identity`), and the replica slots held.

Flags and the config keys of the same name (flags win)::

    answers_kept = 100000            # --answers-kept: answers to peer calls recorded, at most
    answers_max_age = 604800.0       # --answers-max-age: seconds an answer stays recorded
    operator_token_file = "op.token" # --operator-token-file: the token the control verbs need
    max_replica_slots = 64           # --max-replica-slots: replica slots held for peers
    max_replica_total_bytes = 1073741824   # --max-replica-total-bytes: their size in all

    operator_certs = ["ops"]         # --operator-cert NAME: operators' certificate names (mTLS)

    [peer_tokens]                    # --peer-token NAME=FILE: the token each peer presents
    b = "b.token"
    c = "c.token"

    [peer_certs]                     # --peer-cert NAME=CERT_NAME: the certificate each peer presents
    b = "b"                          # (its CN, else its first subjectAltName; needs --tls-*)
    c = "c"
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Callable
from typing import Any

from ..exposed import AnswerLimits
from ..slots import SlotLimits
from .config import FEDERATION_KEYS, ConfigError

__all__ = ["FederationSettings", "add_federation_flags", "federation_settings", "from_file"]

_NUMBERS = ("answers_kept", "answers_max_age", "max_replica_slots", "max_replica_total_bytes")


@dataclasses.dataclass(frozen=True)
class FederationSettings:
    """Answer limits, credentials and replica slot limits of one `fedflow serve`."""

    answers: AnswerLimits = dataclasses.field(default_factory=AnswerLimits)
    operator_token_file: str | None = None
    peer_token_files: dict[str, str] = dataclasses.field(default_factory=dict)
    peer_certs: dict[str, str] = dataclasses.field(default_factory=dict)
    operator_certs: tuple[str, ...] = ()
    slots: SlotLimits = dataclasses.field(default_factory=SlotLimits)


def add_federation_flags(parser: argparse.ArgumentParser) -> None:
    """Add the flags of this module to the `serve` parser."""
    answers, slots = AnswerLimits(), SlotLimits()
    parser.add_argument("--answers-kept", metavar="N", type=int,
                        help=f"answers to peer calls recorded, so a retry is not run again ({answers.max_count})")
    parser.add_argument("--answers-max-age", metavar="S", type=float,
                        help=f"seconds an answer to a peer call stays recorded ({answers.max_age:g})")
    parser.add_argument("--operator-token-file", metavar="F",
                        help="the token the control verbs need (peers' tokens reach only PeerService)")
    parser.add_argument("--peer-token", metavar="NAME=FILE", action="append",
                        help="the token peer NAME presents; it writes only its own replica slot (repeatable)")
    parser.add_argument("--peer-cert", metavar="NAME=CERT_NAME", action="append",
                        help="under mTLS, the name of the client certificate peer NAME presents (repeatable)")
    parser.add_argument("--operator-cert", metavar="CERT_NAME", action="append",
                        help="under mTLS, a client certificate name that may use the control verbs (repeatable)")
    parser.add_argument("--max-replica-slots", metavar="N", type=int,
                        help=f"replica slots held for peers ({slots.max_slots})")
    parser.add_argument("--max-replica-total-bytes", metavar="N", type=int,
                        help=f"bytes all replica slots hold together ({slots.max_total_bytes})")


def from_file(raw: dict[str, Any], path: str) -> dict[str, Any]:
    """The keys of this module found in config file `raw` (read from `path`), checked for type;
    token files resolved against the file's folder."""
    base = os.path.dirname(os.path.abspath(path))
    out: dict[str, Any] = {}
    for key in (k for k in FEDERATION_KEYS if k in raw):
        value = raw[key]
        if key in _NUMBERS and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ConfigError(f"config {path}: {key} must be a number, got {value!r}")
        if key == "operator_token_file":
            if not isinstance(value, str) or not value:
                raise ConfigError(f"config {path}: operator_token_file must be a file name, got {value!r}")
            value = os.path.join(base, value)
        if key == "peer_tokens":
            if not isinstance(value, dict) or not all(isinstance(f, str) and f for f in value.values()):
                raise ConfigError(f"config {path}: [peer_tokens] must be a table of NAME = \"TOKEN_FILE\"")
            value = {name: os.path.join(base, f) for name, f in value.items()}
        if key == "peer_certs" and (not isinstance(value, dict)
                                    or not all(isinstance(c, str) and c for c in value.values())):
            raise ConfigError(f"config {path}: [peer_certs] must be a table of NAME = \"CERTIFICATE_NAME\"")
        if key == "operator_certs" and (not isinstance(value, list)
                                        or not all(isinstance(c, str) and c for c in value)):
            raise ConfigError(f"config {path}: operator_certs must be a list of certificate names, "
                              f"like operator_certs = [\"ops\"]")
        out[key] = value
    return out


def _peer_tokens(pick: Callable[..., Any]) -> dict[str, str]:
    merged = dict(pick("peer_tokens") if isinstance(pick("peer_tokens"), dict) else {})
    for text in pick("peer_token") or []:
        name, sep, path = str(text).partition("=")
        if not sep or not name.strip() or not path.strip():
            raise ConfigError(f"--peer-token {text!r} is not NAME=FILE; write it like --peer-token b=b.token")
        merged[name.strip()] = path.strip()
    return merged


def _peer_certs(pick: Callable[..., Any]) -> dict[str, str]:
    merged = dict(pick("peer_certs") if isinstance(pick("peer_certs"), dict) else {})
    for text in pick("peer_cert") or []:
        name, sep, cert = str(text).partition("=")
        if not sep or not name.strip() or not cert.strip():
            raise ConfigError(f"--peer-cert {text!r} is not NAME=CERT_NAME; write it like --peer-cert b=b")
        merged[name.strip()] = cert.strip()
    return merged


def _operator_certs(pick: Callable[..., Any]) -> tuple[str, ...]:
    names = [*(pick("operator_certs") or []), *(pick("operator_cert") or [])]
    if not all(str(name).strip() for name in names):
        raise ConfigError("--operator-cert needs a certificate name, like --operator-cert ops")
    return tuple(dict.fromkeys(str(name).strip() for name in names))


def federation_settings(pick: Callable[..., Any]) -> FederationSettings:
    """The settings from `pick(key)` (flag, else config file, else None); ConfigError when one is unusable."""
    answers = _built(AnswerLimits, pick, {"max_count": "answers_kept", "max_age": "answers_max_age"})
    slots = _built(SlotLimits, pick, {"max_slots": "max_replica_slots", "max_total_bytes": "max_replica_total_bytes"})
    return FederationSettings(answers=answers, operator_token_file=pick("operator_token_file"),
                              peer_token_files=_peer_tokens(pick), peer_certs=_peer_certs(pick),
                              operator_certs=_operator_certs(pick), slots=slots)


def _built(kind: Callable[..., Any], pick: Callable[..., Any], fields: dict[str, str]) -> Any:
    given = {field: pick(key) for field, key in fields.items() if pick(key) is not None}
    try:
        return kind(**given)
    except ValueError as exc:
        key = next((k for f, k in fields.items() if f in str(exc)), next(iter(fields.values())))
        raise ConfigError(f"--{key.replace('_', '-')}: {exc}") from None
