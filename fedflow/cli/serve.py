"""`fedflow serve`: open the store, connect peers, load modules, serve (health NOT_SERVING),
fence, recover, then health SERVING.

The order matters: peers are connected and every `--load` module has
registered its flows BEFORE `engine.recover()` re-runs the flows a crash
left `running`, so their definitions and peers are there when they replay.
Problems become one line (see `fedflow.cli`): a bad flag, config or
`--load` exits 2; a port in use or a file that is not a fedflow store
exits 1.
"""

from __future__ import annotations

import argparse
import logging
import socket
from types import ModuleType
from typing import Any

from ..engine import Engine
from ..errors import FedflowError
from ..ownership import PeerWatch
from ..store import open_store
from ..store.lockfile import hold_for_serve
from ..store.postgres import redact
from . import config
from .config import ServeSettings, read_secret
from .loader import import_target, load_into

__all__ = ["check_listen", "serve"]

log = logging.getLogger("fedflow.serve")


def _setup_logging(name: str, level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(f"%(asctime)s [{name}] %(levelname)s %(message)s", "%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("grpc").setLevel(max(logging.WARNING, root.level))


def check_listen(address: str) -> None:
    """Raise OSError (one line) when `address` cannot be bound, e.g. another server listens there.

    Checked before the store is opened, so a second `serve` of a running
    instance never re-runs (recovers) the flows the first one is running. A
    plain bind with SO_REUSEADDR (TIME_WAIT leftovers of a crash do not count)."""
    host, port = config.parse_address(address, allow_zero=True)
    if port == 0:
        return
    host = host.strip("[]")
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise OSError(f"cannot listen on {address}: unknown host {host!r} ({exc.strerror}); "
                      f"use an IP address such as 127.0.0.1") from exc
    family, kind, proto, _name, sockaddr = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(sockaddr)
        except OSError as exc:
            raise OSError(f"cannot listen on {address}: {exc.strerror or exc}; another process is using "
                          f"it: stop it or pick a free --listen HOST:PORT") from exc


def _open_engine(conf: ServeSettings) -> Engine:
    try:
        store = open_store(conf.db, name=conf.name, lease=conf.lease)
        return Engine(conf.name, store=store, deadline=conf.deadline, recover=False, run_timers=False)
    except (FedflowError, OSError) as exc:
        raise FedflowError(f"cannot open --db {redact(conf.db)}: {exc}") from exc


def _connect_peers(engine: Engine, conf: ServeSettings, token: str | None) -> None:
    from ..transport.grpc import GrpcTransport

    for peer in conf.peers:
        peer_token = read_secret(peer.token_file, f"token file of peer {peer.name}") if peer.token_file else token
        engine.peers.add(GrpcTransport(peer.name, peer.address, token=peer_token, tls=conf.tls,
                                       limits=conf.limits, default_deadline=conf.deadline))
        log.info("peer %s at %s", peer.name, peer.address)


def _load_modules(engine: Engine, modules: list[tuple[str, ModuleType]]) -> None:
    for target, module in modules:
        loaded = load_into(engine, target, module)
        log.info("loaded module %s", target)
        for fn in loaded.exposed:
            log.info("exposed function %s", fn)
        for flow in loaded.flows:
            log.info("defined flow %s", flow)


def _apply_schedules(engine: Engine, conf: ServeSettings) -> None:
    """The config's [[schedules]], once the modules defined their flows (unchanged ones keep their next tick)."""
    for table in conf.schedules:
        args = dict(table)
        try:
            entry = engine.schedule(args.pop("name"), args.pop("flow"), args.pop("input", None), **args)
        except FedflowError as exc:
            raise config.ConfigError(f"[[schedules]] {table['name']}: {exc}") from exc
        log.info("schedule %s: %s, next tick at %s", entry["name"], entry["flow"], entry["next_at"])


def _recover(engine: Engine) -> None:
    for flow_id in engine.recover():
        log.info("recovered flow %s: now %s", flow_id, engine.status(flow_id))


def _fence(engine: Engine, conf: ServeSettings) -> set[str]:
    """Best effort: mark `moved` each suspended flow a peer now owns at a newer epoch; the
    peers asked (the others are fenced once they are reachable, see `PeerWatch`)."""
    asked = set()
    for peer in conf.peers:
        try:
            fenced = engine.fence(peer.name)
        except FedflowError as exc:
            log.warning("could not check peer %s for flows it owns now: %s", peer.name, exc)
            continue
        asked.add(peer.name)
        for flow_id in fenced:
            log.info("flow %s is owned by %s now: marked moved", flow_id, peer.name)
    return asked


def _credentials(conf: ServeSettings) -> Any:
    """Operator and per-peer tokens and certificate names (`fedflow.grpc.identity.Credentials`),
    None when only the shared --token-file (or nothing) is set; ConfigError when peers have
    credentials but nobody could use the control verbs, or certificate names are given
    without TLS."""
    fed = conf.federation
    if not (fed.operator_token_file or fed.peer_token_files or fed.peer_certs or fed.operator_certs):
        return None
    if (fed.peer_certs or fed.operator_certs) and conf.tls is None:
        raise config.ConfigError("certificate names ([peer_certs], operator_certs, --peer-cert, --operator-cert) "
                                 "identify callers only under mTLS: add --tls-cert, --tls-key and --tls-ca")
    if not (fed.operator_token_file or conf.token_file or fed.operator_certs):
        raise config.ConfigError("peer credentials need an operator credential for the control verbs: "
                                 "add --operator-token-file F or --operator-cert NAME (or the shared --token-file F)")
    from ..grpc.identity import Credentials

    try:
        return Credentials(shared_file=conf.token_file, operator_file=fed.operator_token_file,
                           peer_files=fed.peer_token_files, peer_certs=fed.peer_certs,
                           operator_certs=fed.operator_certs)
    except FedflowError as exc:
        raise config.ConfigError(str(exc)) from None


def _warn_if_open(listen: str, token: str | None, tls: object) -> None:
    """Say loudly when a port off loopback takes every verb from anyone who reaches it."""
    host = listen.rsplit(":", 1)[0].strip("[]")
    if token is None and tls is None and not (host in ("localhost", "::1") or host.startswith("127.")):
        log.warning("%s is reachable beyond this machine with no --token-file and no --tls-*: anyone who "
                    "reaches it can start, resume, cancel, forget and hand off flows; set a token and TLS", listen)


def _bind_console(conf: ServeSettings, token: str | None) -> Any:
    """The web console `--http` (or `http` in the config) asks for, bound but not serving yet
    (None without one)."""
    if not conf.http:
        return None
    from ..console import Console

    return Console(conf.http, token, insecure=conf.http_insecure)


def serve(ns: argparse.Namespace) -> int:
    """Run `fedflow serve` with parsed flags `ns` until SIGTERM/SIGINT; the exit status."""
    conf = config.settings(ns)
    _setup_logging(conf.name, conf.log_level)
    token = read_secret(conf.token_file) if conf.token_file else None
    check_listen(conf.listen)
    modules = [(target, import_target(target)) for target in conf.load]  # before the store is touched
    from ..grpc import security
    from ..grpc.server import serve_forever  # grpc loads only once the settings are known to be usable

    security.tls_config(conf.tls)  # read the certificate files now: a bad path fails before recovery runs
    _warn_if_open(conf.listen, token or conf.federation.operator_token_file, conf.tls)
    console = _bind_console(conf, token)  # bound now: a refused or taken --http changes nothing

    credentials = _credentials(conf)
    lock = hold_for_serve(conf.db, conf.name, conf.listen)  # one serve per SQLite file
    engine = _open_engine(conf)
    try:
        log.info("store %s", redact(conf.db))
        engine.functions.limits = conf.federation.answers
        engine.functions.prune()
        engine.federation.slot_limits = conf.federation.slots
        _connect_peers(engine, conf, token)
        _load_modules(engine, modules)
        _apply_schedules(engine, conf)

        watch: list[PeerWatch] = []

        def warm_up() -> None:  # with the port served (health NOT_SERVING): a recovered flow may call us
            fenced = _fence(engine, conf)  # first, so a flow another instance now owns is not re-run here
            _recover(engine)
            engine.start_timers()  # after the fence: a flow another instance owns now never wakes here
            watch.append(PeerWatch(engine.peers, engine.fence, fenced))  # and again whenever a peer is back

        try:
            serve_forever(engine, conf.listen, token=token, tls=conf.tls, limits=conf.limits, warm_up=warm_up,
                          credentials=credentials,
                          on_ready=(lambda _port: console.start(engine)) if console else None)
        finally:
            for started in watch:
                started.close()
    finally:
        if console:
            console.close()
        engine.close()
        lock.release()
    log.info("stopped %s", conf.name)
    return 0
