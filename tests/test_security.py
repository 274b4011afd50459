"""Authentication on a real server (127.0.0.1, port 0): the shared token and mutual TLS.

Without the token, with a wrong one, or with a certificate from another CA,
every method refuses (both fedflow services, streaming ones, reflection);
with them, every method answers. Health checks need no token.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

import fedflow
from fedflow.cli.config import ConfigError, read_secret
from fedflow.client import ControlClient
from fedflow.grpc import security
from fedflow.grpc.channel import open_channel
from fedflow.grpc.security import TlsConfig, TokenInterceptor
from fedflow.grpc.server import run_server
from fedflow.grpc.status import is_transient
from fedflow.transport.grpc import GrpcTransport

try:
    from test_grpc_support import METHODS, call_raw, make_certs, reflection_call, tls_for
except ImportError:  # tests/ imported as a package
    from tests.test_grpc_support import METHODS, call_raw, make_certs, reflection_call, tls_for

TOKEN = "s3cret-token"
Code = grpc.StatusCode
BEARER = (("authorization", f"Bearer {TOKEN}"),)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(our CA folder with server/client/peer certs, another CA's folder with a client cert)."""
    ours = make_certs(tmp_path_factory.mktemp("ca-ours"), "server", "client", "peer")
    other = make_certs(tmp_path_factory.mktemp("ca-other"), "client", "server")
    return ours, other


@pytest.fixture
def engine() -> Iterator[fedflow.Engine]:
    e = fedflow.Engine(name=f"sec-{uuid.uuid4().hex[:6]}")
    e.expose("echo", lambda x: x)
    yield e
    e.close()


def _every_method(channel: grpc.Channel, metadata: tuple = ()) -> dict[str, grpc.RpcError | None]:
    """Call each fedflow method (default request) and reflection; method -> error or None."""
    out = {m.name: call_raw(channel, service, m, [b""], metadata=metadata, timeout=5) for service, m in METHODS}
    out["ServerReflectionInfo"] = reflection_call(channel, metadata)
    return out


def _health(channel: grpc.Channel, metadata: tuple = ()) -> int:
    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5, metadata=metadata)
    return reply.status


# ---------------------------------------------------------------- the shared token
@pytest.mark.parametrize("metadata", [(), (("authorization", "Bearer wrong"),), (("authorization", TOKEN),),
                                      (("authorization", f"Bearer {TOKEN}x"),)],
                         ids=["none", "wrong", "no-bearer", "longer"])
def test_without_the_right_token_every_method_is_unauthenticated_and_names_the_flag(engine, metadata):
    with run_server(engine, token=TOKEN, grace=0.2) as port:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        try:
            answers = _every_method(channel, metadata)
            assert len(answers) == len(METHODS) + 1
            for name, err in answers.items():
                assert err is not None and err.code() is Code.UNAUTHENTICATED, name
                assert "--token-file" in err.details() and "FEDFLOW_TOKEN" in err.details()
            assert _health(channel, metadata) == health_pb2.HealthCheckResponse.SERVING
        finally:
            channel.close()


def test_with_the_token_every_method_answers(engine):
    with run_server(engine, token=TOKEN, grace=0.2) as port:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        try:
            answers = _every_method(channel, BEARER)
        finally:
            channel.close()
    refused = {n: e.code() for n, e in answers.items() if e is not None and e.code() in
               (Code.UNAUTHENTICATED, Code.UNAVAILABLE, Code.UNKNOWN, Code.INTERNAL)}
    assert not refused
    assert answers["Status"] is None and answers["Claims"] is None and answers["ServerReflectionInfo"] is None


def _transport_attempts(t: GrpcTransport) -> list:
    return [lambda: t.call("echo", 1, deadline=2, call_id="x"),
            lambda: t.push_replica("someone", "{}", deadline=2),
            lambda: t.fetch_replica("someone", deadline=2),
            lambda: t.restore("someone", None, deadline=2),
            lambda: t.claims(["a"], deadline=2)]


def _client_attempts(c: ControlClient) -> list:
    return [lambda: c.call("echo", 1), lambda: c.start("f", 1), lambda: c.resume("x", 1), lambda: c.cancel("x"),
            c.list, c.pending, c.gc, c.peers, lambda: c.status("x"), lambda: c.result("x"),
            lambda: c.forget("x"), lambda: c.replicate("p"), lambda: c.restore("p"), lambda: c.handoff("p")]


def test_clients_without_the_right_token_get_a_peer_error_that_says_which_flag_to_set(engine):
    with run_server(engine, token=TOKEN, grace=0.2) as port:
        address = f"127.0.0.1:{port}"
        for token in (None, "wrong"):
            t, c = GrpcTransport("guarded", address, token=token), ControlClient(address, token=token, deadline=2)
            try:
                for attempt in _transport_attempts(t) + _client_attempts(c):
                    with pytest.raises(fedflow.PeerError, match="--token-file") as ei:
                        attempt()
                    assert not isinstance(ei.value, fedflow.PeerUnavailable), "a refusal is not retried"
                assert t.health(deadline=2) is True and c.health() is True, "health needs no token"
            finally:
                t.close()
                c.close()


def test_clients_with_the_token_work(engine):
    with run_server(engine, token=TOKEN, grace=0.2) as port:
        address = f"127.0.0.1:{port}"
        t, c = GrpcTransport("guarded", address, token=TOKEN), ControlClient(address, token=TOKEN)
        try:
            assert t.call("echo", 2**70, deadline=5, call_id="ok") == 2**70
            assert t.claims(["nobody"], deadline=5) == []
            assert c.call("echo", b"\x00") == {"result": b"\x00"}
            assert c.list() == {"flows": []}
        finally:
            t.close()
            c.close()


def test_the_token_check_is_exact_and_lets_only_health_through():
    guard = TokenInterceptor(TOKEN)
    method = "/fedflow.v1.PeerService/Call"
    assert guard.allowed(method, [("authorization", f"Bearer {TOKEN}")])
    assert guard.allowed(method, [("x-other", "1"), ("authorization", f"Bearer {TOKEN}".encode())])
    for scheme in ("bearer", "BEARER", "bEaReR"):
        assert guard.allowed(method, [("authorization", f"{scheme} {TOKEN}")]), "the scheme is case-insensitive"
    for metadata in ([], None, [("authorization", f"Bearer {TOKEN} ")], [("authorization", TOKEN)],
                     [("authorization", f"Basic {TOKEN}")], [("authorization", f"Bearer{TOKEN}")],
                     [("authorization", f"Bearer {TOKEN}"), ("authorization", "Bearer other")]):
        assert not guard.allowed(method, metadata), metadata
    assert guard.allowed("/grpc.health.v1.Health/Check", [])
    assert not guard.allowed("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", [])
    with pytest.raises(ValueError):
        TokenInterceptor("")


def test_tokens_come_from_a_file_or_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "t").write_text(f"  {TOKEN}\n")
    assert read_secret(str(tmp_path / "t"), "--token-file") == TOKEN
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError, match=r"--token-file .* is empty"):
        read_secret(str(tmp_path / "empty"), "--token-file")
    with pytest.raises(ConfigError, match="cannot read --token-file"):
        read_secret(str(tmp_path / "missing"), "--token-file")
    monkeypatch.setenv("FEDFLOW_TOKEN", f" {TOKEN} ")
    assert security.token_from_env() == TOKEN
    monkeypatch.setenv("FEDFLOW_TOKEN", "")
    assert security.token_from_env() is None


# ---------------------------------------------------------------- mutual TLS
@pytest.fixture
def tls_server(engine, certs) -> Iterator[str]:
    ours, _ = certs
    with run_server(engine, tls=tls_for(ours, "server"), grace=0.2) as port:
        yield f"127.0.0.1:{port}"


def test_with_a_certificate_from_our_ca_every_method_answers(tls_server, certs):
    ours, _ = certs
    channel = open_channel(tls_server, tls=tls_for(ours, "client"))
    try:
        assert _health(channel) == health_pb2.HealthCheckResponse.SERVING
        answers = _every_method(channel)
    finally:
        channel.close()
    assert not {n: e.code() for n, e in answers.items() if e is not None and e.code() in
                (Code.UNAUTHENTICATED, Code.UNAVAILABLE, Code.UNKNOWN, Code.INTERNAL)}


@pytest.mark.parametrize("who", ["other-ca-client", "no-client-cert", "plaintext"])
def test_without_a_certificate_from_our_ca_every_method_refuses(tls_server, certs, who):
    ours, other = certs
    if who == "plaintext":
        channel = grpc.insecure_channel(tls_server)
    elif who == "no-client-cert":
        channel = open_channel(tls_server, tls=TlsConfig(ca=(ours / "ca.pem").read_bytes()))
    else:
        channel = open_channel(tls_server, tls=tls_for(other, "client", ca_folder=ours))
    try:
        answers = _every_method(channel)
        with pytest.raises(grpc.RpcError) as ei:
            _health(channel)
        answers["Health"] = ei.value
    finally:
        channel.close()
    assert {n: e.code() if e else None for n, e in answers.items()} == dict.fromkeys(answers, Code.UNAVAILABLE)


def test_a_client_that_does_not_trust_the_servers_ca_gets_a_tls_error_naming_the_flags(tls_server, certs):
    _ours, other = certs
    transport = GrpcTransport("tls", tls_server, tls=tls_for(other, "client"))
    try:
        with pytest.raises(fedflow.PeerError, match=r"TLS handshake.*--tls-ca") as ei:
            transport.call("echo", 1, deadline=5, call_id="x")
        assert not isinstance(ei.value, fedflow.PeerUnavailable)
        assert isinstance(ei.value.__cause__, grpc.RpcError) and not is_transient(ei.value.__cause__)
    finally:
        transport.close()


def test_tls_and_token_together_need_both(engine, certs):
    ours, _ = certs
    with run_server(engine, tls=tls_for(ours, "server"), token=TOKEN, grace=0.2) as port:
        address = f"127.0.0.1:{port}"
        with ControlClient(address, tls=tls_for(ours, "client"), deadline=5) as client:
            with pytest.raises(fedflow.PeerError, match="--token-file"):
                client.list()
        with ControlClient(address, tls=tls_for(ours, "client"), token=TOKEN, deadline=5) as client:
            assert client.list() == {"flows": []}
            assert client.call("echo", [1, "two"]) == {"result": [1, "two"]}


@dataclasses.dataclass
class Paths:
    """Stands in for fedflow.config.TlsFiles: PEM file paths."""

    cert: str | None
    key: str | None
    ca: str | None


def test_federation_runs_over_mtls_with_tokens(certs):
    """Replicate, restore elsewhere, fence and call over mutual TLS, configured from file paths."""
    ours, _ = certs
    flow_name = f"sec-wait-{uuid.uuid4().hex[:6]}"
    fedflow.defflow(flow_name, fedflow.node(lambda x: {"x": x, "go": fedflow.suspend("go")}))
    server_tls = Paths(str(ours / "server.pem"), str(ours / "server.key"), str(ours / "ca.pem"))
    peer_tls = Paths(str(ours / "peer.pem"), str(ours / "peer.key"), str(ours / "ca.pem"))
    a, b = fedflow.Engine(name="sec-a"), fedflow.Engine(name="sec-b")
    b.expose("double", lambda x: 2 * x)
    try:
        with run_server(b, tls=server_tls, token=TOKEN, grace=0.2) as port:
            a.peers.add(GrpcTransport("b", f"127.0.0.1:{port}", tls=peer_tls, token=TOKEN, default_deadline=5))
            assert a.start(fedflow.remote_node("b", "double"), 21) == 42
            waiting = a.start(flow_name, 1)
            assert a.replicate_to("b") == 2, "the done flow and the waiting one"
            assert waiting.id in b.restore_from("sec-b", source="sec-a")
            assert a.fence("b") == [waiting.id]
            assert a.status(waiting.id) == "moved"
    finally:
        a.close()
        b.close()


def test_unusable_tls_settings_are_refused_before_serving_naming_the_flag(engine, certs, tmp_path: Path):
    ours, _ = certs
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(fedflow.FedflowError, match=r"--tls-cert .* is not a PEM file"):
        TlsConfig.from_files(str(tmp_path / "junk.pem"), None, None)
    with pytest.raises(fedflow.FedflowError, match="cannot read --tls-ca"):
        TlsConfig.from_files(None, None, str(tmp_path / "missing.pem"))
    no_ca = Paths(str(ours / "server.pem"), str(ours / "server.key"), None)
    with pytest.raises(fedflow.FedflowError, match="--tls-ca"), run_server(engine, tls=no_ca):
        pass
    with pytest.raises(fedflow.FedflowError, match="--tls-ca"):
        GrpcTransport("x", "127.0.0.1:1", tls=TlsConfig(cert=b"-----BEGIN x", key=b"-----BEGIN y"))
    with pytest.raises(fedflow.FedflowError, match="go together"):
        ControlClient("127.0.0.1:1", tls=TlsConfig(cert=b"-----BEGIN x", ca=b"-----BEGIN y"))
    with pytest.raises(TypeError, match="TlsConfig"):
        GrpcTransport("x", "127.0.0.1:1", tls=object())
    assert "BEGIN" not in repr(tls_for(ours, "client")), "a private key is never printed"


def test_the_certs_command_refuses_bad_usage_and_makes_what_it_says(tmp_path: Path, capsys) -> None:
    from fedflow.cli import certs

    assert certs.main([str(tmp_path / "x")]) == 2
    assert certs.main([str(tmp_path / "pki"), "peer-a"]) == 0
    made = sorted(p.name for p in (tmp_path / "pki").iterdir())
    assert {"ca.pem", "ca.key", "peer-a.pem", "peer-a.key"} <= set(made)
    assert oct((tmp_path / "pki" / "peer-a.key").stat().st_mode & 0o777) == "0o600"
    assert "peer-a.pem" in capsys.readouterr().out
