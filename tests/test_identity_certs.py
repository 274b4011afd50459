"""Peers named by their client certificate under mTLS, as per-peer tokens name them: a peer's
certificate reaches only PeerService and writes only its own replica slot, an operator's
certificate reaches the control verbs, and a certificate named in neither list is refused
(in-process servers and real `fedflow serve` processes over TLS on loopback)."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

import fedflow
from fedflow.client import ControlClient
from fedflow.errors import FedflowError, ReplicaError
from fedflow.grpc.identity import Caller, Credentials, certificate_name
from fedflow.grpc.server import run_server
from fedflow.transport.grpc import GrpcTransport

try:
    from test_cli_support import PEERS, Server, ServerPool, assert_one_line_error, cli_json, free_ports, run_cli
    from test_grpc_support import make_certs, tls_for
except ImportError:  # tests/ imported as a package
    from tests.test_cli_support import PEERS, Server, ServerPool, assert_one_line_error, cli_json, free_ports, run_cli
    from tests.test_grpc_support import make_certs, tls_for

EXPORT = json.dumps({"format": "fedflow-store", "version": 1, "engine": "b", "flows": []})


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_certs(tmp_path_factory.mktemp("id-certs"), "holder", "a", "b", "c", "ops", "stranger")


def test_a_certificate_is_named_by_its_common_name_else_its_first_alternative_name() -> None:
    assert certificate_name({"x509_common_name": [b"b"], "x509_subject_alternative_name": [b"x", b"y"]}) == "b"
    assert certificate_name({"x509_subject_alternative_name": [b"x", b"y"]}) == "x"
    assert certificate_name({"transport_security_type": [b"insecure"]}) is None


def test_certificate_names_map_to_callers_and_one_name_cannot_be_two_callers(tmp_path: Path) -> None:
    creds = Credentials(peer_certs={"b": "b-cert"}, operator_certs=["ops"])
    assert creds.who_by_certificate({"x509_common_name": [b"b-cert"]}) == Caller("b", False)
    assert creds.who_by_certificate({"x509_common_name": [b"ops"]}) == Caller(None, True)
    assert creds.who_by_certificate({"x509_common_name": [b"stranger"]}) is None
    assert creds.who_by_certificate({}) is None
    with pytest.raises(FedflowError, match="give each its own certificate"):
        Credentials(peer_certs={"b": "ops"}, operator_certs=["ops"])
    with pytest.raises(FedflowError, match="give each its own certificate"):
        Credentials(peer_certs={"b": "same", "c": "same"})


@pytest.fixture
def served(certs: Path, tmp_path: Path) -> Iterator[tuple[fedflow.Engine, str]]:
    (tmp_path / "op.token").write_text("op-secret\n")
    creds = Credentials(peer_certs={"b": "b", "c": "c"}, operator_certs=["ops"],
                        operator_file=str(tmp_path / "op.token"))
    with fedflow.Engine(name="holder") as engine, \
            run_server(engine, tls=tls_for(certs, "holder"), credentials=creds) as port:
        engine.expose("echo", lambda x: x)
        yield engine, f"127.0.0.1:{port}"


def test_a_peer_certificate_reaches_only_peer_service_and_only_its_own_slot(
        certs: Path, served: tuple[fedflow.Engine, str]) -> None:
    engine, address = served
    with contextlib.closing(GrpcTransport("holder", address, tls=tls_for(certs, "b"))) as b:
        assert b.call("echo", 7, deadline=5, call_id="") == 7
        assert b.push_replica("b", EXPORT, deadline=5) == 0
        with pytest.raises(ReplicaError, match="only its own replica slot"):
            b.push_replica("c", EXPORT, deadline=5)
    with ControlClient(address, tls=tls_for(certs, "b")) as as_peer, \
            pytest.raises(FedflowError, match="operator credential"):
        as_peer.status("x")
    assert [(s, who) for s, _n, _at, who in engine.store.replica_slots()] == [("b", "b")]


def test_an_operator_certificate_reaches_the_control_verbs(certs: Path, served: tuple[fedflow.Engine, str]) -> None:
    _engine, address = served
    with ControlClient(address, tls=tls_for(certs, "ops")) as operator:
        assert operator.status("x")["status"] == "unknown"
    with ControlClient(address, tls=tls_for(certs, "b"), token="op-secret") as b_with_token:
        assert b_with_token.status("x")["status"] == "unknown", "a known token decides before the certificate"


def test_a_certificate_named_nowhere_is_refused_even_though_the_ca_signed_it(
        certs: Path, served: tuple[fedflow.Engine, str]) -> None:
    _engine, address = served
    with ControlClient(address, tls=tls_for(certs, "stranger")) as stranger, \
            pytest.raises(FedflowError, match="unknown caller"):
        stranger.status("x")
    with contextlib.closing(GrpcTransport("holder", address, tls=tls_for(certs, "stranger"))) as transport, \
            pytest.raises(FedflowError, match="unknown caller"):
        transport.push_replica("stranger", EXPORT, deadline=5)
    with ControlClient(address, tls=tls_for(certs, "stranger")) as stranger:
        assert stranger.health(), "health checks stay open"


def test_reflection_streams_are_decided_per_call_by_the_certificate(
        certs: Path, served: tuple[fedflow.Engine, str]) -> None:
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    from fedflow.grpc.security import channel_credentials

    _engine, address = served

    def services(name: str) -> list[str]:
        creds, options = channel_credentials(tls_for(certs, name))
        with grpc.secure_channel(address, creds, options=options) as channel:
            stub = reflection_pb2_grpc.ServerReflectionStub(channel)
            (answer,) = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                                                  timeout=5)
            return [s.name for s in answer.list_services_response.service]

    assert "fedflow.v1.ControlService" in services("ops")
    with pytest.raises(grpc.RpcError) as refused:
        services("stranger")
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


# ------------------------------------------------------------------ fedflow serve with a config file
def _tls_flags(folder: Path, name: str) -> list[str]:
    return ["--tls-cert", str(folder / f"{name}.pem"), "--tls-key", str(folder / f"{name}.key"),
            "--tls-ca", str(folder / "ca.pem")]


def _serve(pool: ServerPool, certs: Path, name: str, config: str, extra: tuple[str, ...] = ()) -> Server:
    path = pool.workdir / f"{name}.toml"
    path.write_text(config)
    addr = f"127.0.0.1:{free_ports(1)[0]}"
    args = ["serve", "--name", name, "--listen", addr, "--db", str(pool.workdir / f"{name}.db"), "--config",
            str(path), "--load", str(PEERS / "fed.py"), *_tls_flags(certs, name), *extra]
    server = pool.spawn(name, addr, args, wait=False)
    end = time.monotonic() + 20
    with ControlClient(addr, tls=tls_for(certs, "ops"), deadline=1) as client:
        while not client.health():
            assert server.proc.poll() is None and time.monotonic() < end, server.log()
            time.sleep(0.05)
    return server


@pytest.mark.slow
def test_serves_name_each_other_by_certificate_from_the_config(pool: ServerPool, certs: Path) -> None:
    b = _serve(pool, certs, "b", 'operator_certs = ["ops"]\n[peer_certs]\na = "a"\n')
    a = _serve(pool, certs, "a", 'operator_certs = ["ops"]\n[peer_certs]\nb = "b"\n', extra=("--peer", f"b={b.addr}"))
    ops = _tls_flags(certs, "ops")
    assert cli_json(["replicate", "--at", a.addr, "--to", "b", *ops]) == {"to": "b", "flows": 0}
    (slot,) = cli_json(["replicas", "--db", str(pool.workdir / "b.db")])["replicas"]
    assert (slot["source"], slot["sender"]) == ("a", "a"), "b knows a by its certificate"
    assert cli_json(["replicas", "--at", b.addr, *ops]) == {"replicas": [slot]}, "the same slots over the wire"
    assert_one_line_error(run_cli(["replicas", "--at", b.addr, *_tls_flags(certs, "a")]), 1, "operator credential")
    assert_one_line_error(run_cli(["list", "--at", a.addr, *_tls_flags(certs, "b")]), 1, "operator credential")
    assert_one_line_error(run_cli(["list", "--at", a.addr, *_tls_flags(certs, "stranger")]), 1, "unknown caller")


def test_certificate_names_without_tls_are_refused_naming_the_flags(tmp_path: Path) -> None:
    cp = run_cli(["serve", "--name", "x", "--listen", "127.0.0.1:0", "--db", str(tmp_path / "x.db"),
                  "--peer-cert", "b=b", "--operator-cert", "ops"])
    assert_one_line_error(cp, 2, "--tls-cert", logs=True)
    assert not (tmp_path / "x.db").exists()
    (tmp_path / "bad.toml").write_text('peer_certs = ["b"]\n')
    cp = run_cli(["serve", "--name", "x", "--listen", "127.0.0.1:0", "--config", str(tmp_path / "bad.toml")])
    assert_one_line_error(cp, 2, "[peer_certs]", logs=True)
    cp = run_cli(["serve", "--name", "x", "--listen", "127.0.0.1:0", "--peer-cert", "b"])
    assert_one_line_error(cp, 2, "NAME=CERT_NAME", logs=True)
