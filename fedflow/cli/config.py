"""Settings for `fedflow serve`: a TOML file, command-line flags, and the two merged.

A config file holds the same settings as the flags::

    name = "a"
    listen = "127.0.0.1:50061"
    db = "a.db"                      # default: NAME.db in the working directory
    load = ["../publishing.py", "mypackage.peer"]
    deadline = 5.0
    lease = 5.0                      # PostgreSQL store: seconds before another instance takes over
    token_file = "token.txt"
    log_level = "INFO"
    max_message_bytes = 8388608      # limits (fedflow.limits): message size, calls at once, replica size
    max_concurrent_rpcs = 256
    max_replica_bytes = 268435456
    http = "127.0.0.1:8080"          # the web console, /metrics and /healthz (fedflow.console)
    http_insecure = false            # true allows http off loopback without a token

    [peers]
    b = "127.0.0.1:50062"
    c = { address = "127.0.0.1:50063", token_file = "c-token.txt" }

    [[schedules]]                    # Engine.schedule(...): cron (UTC) or every (seconds)
    name = "nightly"
    flow = "report"
    cron = "0 3 * * *"
    input = { "full" = true }        # optional; catchup, overlap and paused too

Relative paths in a file (db, token files, TLS files, and `load` entries that
are paths) are read relative to the file's own folder, so a config works from
any working directory. Flags override the file; `--load` and `--peer` add to
its lists (a `--peer` with a name the file also has replaces that entry).

>>> parse_address("127.0.0.1:50051")
('127.0.0.1', 50051)
>>> parse_peer("b=127.0.0.1:50062")
('b', '127.0.0.1:50062')
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from typing import Any

from ..limits import DEFAULT_LIMITS, Limits

__all__ = [
    "FEDERATION_KEYS", "LOG_LEVELS", "ConfigError", "PeerSpec", "ServeSettings", "TlsFiles", "UsageError",
    "is_path", "load_file", "parse_address", "parse_peer", "read_secret", "settings",
]

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_PATH_KEYS = ("db", "token_file", "tls_cert", "tls_key", "tls_ca")
_STR_KEYS = ("name", "listen", "log_level", "http", *_PATH_KEYS)
_LIMIT_KEYS = ("max_message_bytes", "max_concurrent_rpcs", "max_replica_bytes")
#: Keys read by fedflow.cli.federation_settings.
FEDERATION_KEYS = ("answers_kept", "answers_max_age", "operator_token_file", "peer_tokens", "max_replica_slots",
                   "max_replica_total_bytes", "peer_certs", "operator_certs")
_KEYS = frozenset({*_STR_KEYS, *_LIMIT_KEYS, *FEDERATION_KEYS, "load", "peers", "deadline", "lease", "schedules",
                   "http_insecure"})


class UsageError(ValueError):
    """Raised when the command line cannot work as given (the CLI exits 2); the message says the fix."""


class ConfigError(UsageError):
    """Raised when a flag, a config file or a setting in it cannot be used; the message says how to fix it."""


@dataclasses.dataclass(frozen=True)
class TlsFiles:
    """PEM files for TLS: this side's certificate and key, and the CA that signs the other side."""

    cert: str | None
    key: str | None
    ca: str | None


@dataclasses.dataclass(frozen=True)
class PeerSpec:
    """One peer `fedflow serve` connects to: its name, host:port and optional token file."""

    name: str
    address: str
    token_file: str | None = None


@dataclasses.dataclass
class ServeSettings:
    """Everything `fedflow serve` needs, after merging the config file and the flags."""

    name: str
    listen: str
    db: str
    load: list[str]
    peers: list[PeerSpec]
    deadline: float = 10.0
    lease: float | None = None       # None: the store's default
    token_file: str | None = None
    log_level: str = "INFO"
    tls: TlsFiles | None = None
    limits: Limits = DEFAULT_LIMITS
    schedules: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # Engine.schedule arguments
    federation: Any = None  # a fedflow.cli.federation_settings.FederationSettings
    http: str | None = None        # where the web console listens (HOST:PORT), if anywhere
    http_insecure: bool = False    # allow `http` off loopback without a token


def parse_address(text: str, *, allow_zero: bool = False) -> tuple[str, int]:
    """Split "HOST:PORT" (IPv6 as "[::1]:PORT"); ConfigError when it is not one."""
    host, sep, port = str(text).rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{text!r} is not HOST:PORT; write it like 127.0.0.1:50051")
    if int(port) == 0 and not allow_zero:
        raise ConfigError(f"{text!r} has port 0; give the peer's real port")
    return host, int(port)


def parse_peer(text: str) -> tuple[str, str]:
    """Split a `--peer NAME=HOST:PORT` value into (name, address)."""
    name, sep, address = str(text).partition("=")
    if not sep or not name.strip():
        raise ConfigError(f"--peer {text!r} is not NAME=HOST:PORT; write it like --peer b=127.0.0.1:50062")
    parse_address(address.strip())
    return name.strip(), address.strip()


def is_path(target: str) -> bool:
    """True when a `--load` target names a file rather than a dotted module."""
    return target.endswith(".py") or "/" in target or os.sep in target


def read_secret(path: str, what: str = "token file") -> str:
    """The stripped text of a token file; ConfigError when it cannot be read or is empty."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.__class__.__name__}: {exc}; "
                          f"point it at a readable file") from exc
    if not text:
        raise ConfigError(f"{what} {path} is empty; put the shared token in it")
    return text


# ------------------------------------------------------------------ the file
def load_file(path: str) -> dict[str, Any]:
    """Read and check a TOML config; paths in it come back resolved against its folder."""
    try:
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}; check the path") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config {path} is not valid TOML: {exc}; fix the file") from exc
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise ConfigError(f"config {path}: unknown key(s) {unknown}; known keys are {sorted(_KEYS)}")
    base = os.path.dirname(os.path.abspath(path))
    out = {key: _string(raw, key, path) for key in _STR_KEYS if key in raw}
    for key in _PATH_KEYS:
        if key in out and "://" not in out[key]:  # a database URL is not a path
            out[key] = os.path.join(base, out[key])
    if "deadline" in raw:
        out["deadline"] = _deadline(raw["deadline"], f"config {path}: deadline")
    if "lease" in raw:
        out["lease"] = _deadline(raw["lease"], f"config {path}: lease")
    out.update({key: raw[key] for key in _LIMIT_KEYS if key in raw})
    if "load" in raw:
        out["load"] = [_resolve_target(t, base) for t in _string_list(raw["load"], path)]
    if "peers" in raw:
        out["peers"] = _peers(raw["peers"], path, base)
    if "schedules" in raw:
        out["schedules"] = _schedules(raw["schedules"], path)
    from .federation_settings import from_file

    out.update(from_file(raw, path))
    if "http_insecure" in raw:
        if not isinstance(raw["http_insecure"], bool):
            raise ConfigError(f"config {path}: http_insecure must be true or false, got {raw['http_insecure']!r}")
        out["http_insecure"] = raw["http_insecure"]
    return out


def _schedules(tables: Any, path: str) -> list[dict[str, Any]]:
    from ..schedules import schedule_tables

    try:
        return schedule_tables(tables)
    except ValueError as exc:
        raise ConfigError(f"config {path}: {exc}") from None


def _string(raw: dict[str, Any], key: str, path: str) -> str:
    value = raw[key]
    if not isinstance(value, str) or not value:
        raise ConfigError(f"config {path}: {key} must be a non-empty string, got {value!r}")
    return value


def _string_list(value: Any, path: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"config {path}: load must be a list of module names or .py paths, got {value!r}")
    return value


def _resolve_target(target: str, base: str) -> str:
    return os.path.normpath(os.path.join(base, target)) if is_path(target) else target


def _peers(table: Any, path: str, base: str) -> list[PeerSpec]:
    if not isinstance(table, dict):
        raise ConfigError(f"config {path}: [peers] must be a table of NAME = \"HOST:PORT\"")
    out = []
    for name, entry in table.items():
        if isinstance(entry, str):
            entry = {"address": entry}
        if not isinstance(entry, dict) or not isinstance(entry.get("address"), str) \
                or set(entry) - {"address", "token_file"}:
            raise ConfigError(f"config {path}: peer {name!r} must be \"HOST:PORT\" or "
                              f"{{ address = \"HOST:PORT\", token_file = \"F\" }}")
        try:
            parse_address(entry["address"])
        except ConfigError as exc:
            raise ConfigError(f"config {path}: peer {name!r}: {exc}") from None
        token = entry.get("token_file")
        out.append(PeerSpec(name, entry["address"], os.path.join(base, token) if token else None))
    return out


def _deadline(value: Any, what: str) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if isinstance(value, bool) or not 0 < seconds < 86400:
        raise ConfigError(f"{what} must be a number of seconds above 0, got {value!r}")
    return seconds


# ------------------------------------------------------------------ merging
def settings(flags: Any) -> ServeSettings:
    """Merge `--config` (if any) and the parsed serve flags; flags win."""
    conf = load_file(flags.config) if getattr(flags, "config", None) else {}

    def pick(key: str, default: Any = None) -> Any:
        value = getattr(flags, key, None)
        return value if value is not None else conf.get(key, default)

    name, listen = pick("name"), pick("listen")
    if not name:
        raise ConfigError("serve needs --name NAME (or name = \"...\" in the --config file)")
    if not listen:
        raise ConfigError("serve needs --listen HOST:PORT (or listen = \"...\" in the --config file)")
    parse_address(listen, allow_zero=True)
    http = pick("http")
    if http:
        try:
            parse_address(http, allow_zero=True)
        except ConfigError as exc:
            raise ConfigError(f"--http (or http in the --config file): {exc}") from None
    level = str(pick("log_level", "INFO")).upper()
    if level not in LOG_LEVELS:
        raise ConfigError(f"log level {level!r} is not one of {', '.join(LOG_LEVELS)}")
    return ServeSettings(
        name=name, listen=listen, db=pick("db") or f"{name}.db",
        load=_unique([*conf.get("load", []), *(flags.load or [])]),
        peers=_merge_peers(conf.get("peers", []), flags.peer or []),
        deadline=_deadline(pick("deadline", 10.0), "--deadline"),
        lease=None if pick("lease") is None else _deadline(pick("lease"), "--lease"),
        token_file=pick("token_file"), log_level=level, tls=_tls(pick), limits=_limits(pick),
        schedules=conf.get("schedules", []), federation=_federation(pick),
        http=http or None, http_insecure=bool(getattr(flags, "http_insecure", False) or conf.get("http_insecure")),
    )


def _federation(pick: Any) -> Any:
    from .federation_settings import federation_settings

    return federation_settings(pick)


def _unique(items: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        seen.setdefault(item, None)
    return list(seen)


def _merge_peers(from_file: list[PeerSpec], flags: list[str]) -> list[PeerSpec]:
    merged = {spec.name: spec for spec in from_file}
    for text in flags:
        name, address = parse_peer(text)
        merged[name] = PeerSpec(name, address)
    return list(merged.values())


def _tls(pick: Any) -> TlsFiles | None:
    files = TlsFiles(pick("tls_cert"), pick("tls_key"), pick("tls_ca"))
    given = [f for f in (files.cert, files.key, files.ca) if f]
    if not given:
        return None
    if len(given) != 3:
        raise ConfigError("serving TLS needs all three of --tls-cert, --tls-key and --tls-ca")
    return files


def _limits(pick: Any) -> Limits:
    given = {key: pick(key) for key in _LIMIT_KEYS if pick(key) is not None}
    try:
        return Limits(**given)
    except ValueError as exc:
        flag = next((f"--{k.replace('_', '-')}" for k in given if k in str(exc)), "a limit")
        raise ConfigError(f"{flag}: {exc}") from None
