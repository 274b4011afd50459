"""Authentication and limits through the command line: `fedflow serve --token-file
--tls-cert/--tls-key/--tls-ca --max-*` and the client verbs' matching flags."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from fedflow.client import ControlClient
from fedflow.grpc.security import TlsConfig

try:
    from test_cli_support import PEERS, Server, ServerPool, assert_one_line_error, cli_json, free_ports, run_cli
    from test_grpc_support import make_certs, tls_for
except ImportError:  # tests/ imported as a package
    from tests.test_cli_support import PEERS, Server, ServerPool, assert_one_line_error, cli_json, free_ports, run_cli
    from tests.test_grpc_support import make_certs, tls_for

pytestmark = pytest.mark.slow
TOKEN = "cli-s3cret"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    ours = make_certs(tmp_path_factory.mktemp("cli-ours"), "a", "b", "client")
    other = make_certs(tmp_path_factory.mktemp("cli-other"), "client")
    return ours, other


def _tls_flags(folder: Path, name: str, ca_folder: Path | None = None) -> list[str]:
    return ["--tls-cert", str(folder / f"{name}.pem"), "--tls-key", str(folder / f"{name}.key"),
            "--tls-ca", str((ca_folder or folder) / "ca.pem")]


def _serve_secure(pool: ServerPool, certs: tuple[Path, Path], name: str, token_file: Path,
                  extra: tuple[str, ...] = ()) -> Server:
    ours, _ = certs
    addr = f"127.0.0.1:{free_ports(1)[0]}"
    args = ["serve", "--name", name, "--listen", addr, "--db", str(pool.workdir / f"{name}.db"),
            "--load", str(PEERS / "fed.py"), "--token-file", str(token_file), *_tls_flags(ours, name), *extra]
    server = pool.spawn(name, addr, args, wait=False)
    end = time.monotonic() + 20
    with ControlClient(addr, tls=tls_for(ours, "client"), deadline=1) as client:
        while not client.health():
            assert server.proc.poll() is None and time.monotonic() < end, server.log()
            time.sleep(0.05)
    return server


def test_a_secured_serve_refuses_clients_without_the_token_or_a_certificate_from_its_ca(
        pool: ServerPool, certs, tmp_path: Path):
    ours, other = certs
    (tmp_path / "token").write_text(TOKEN + "\n")
    server = _serve_secure(pool, certs, "a", tmp_path / "token")
    good_tls = _tls_flags(ours, "client")
    with_token = ["--token-file", str(tmp_path / "token")]
    for verb in (["call", "--at", server.addr, "publish", '"hi"'], ["list", "--at", server.addr]):
        assert_one_line_error(run_cli([*verb, *good_tls]), 1, "--token-file")
        (tmp_path / "wrong").write_text("nope")
        assert_one_line_error(run_cli([*verb, *good_tls, "--token-file", tmp_path / "wrong"]), 1, "--token-file")
        assert_one_line_error(run_cli([*verb, *_tls_flags(other, "client", ca_folder=ours), *with_token]), 1,
                              "--tls-")  # our certificate is not from its CA
        assert_one_line_error(run_cli([*verb, *with_token]), 1, "--tls-")  # plaintext to a TLS server
        assert_one_line_error(run_cli([*verb, *_tls_flags(other, "client"), *with_token]), 1,
                              "TLS handshake", "--tls-ca")  # we do not trust its CA
        assert run_cli([*verb, *good_tls, *with_token]).returncode == 0
    out = cli_json(["call", "--at", server.addr, "publish", '"hi"', *good_tls], env={"FEDFLOW_TOKEN": TOKEN})
    assert out["result"]["published"] == "hi"


def test_secured_serves_reach_their_peers_over_mtls_with_the_token(pool: ServerPool, certs, tmp_path: Path):
    ours, _ = certs
    (tmp_path / "token").write_text(TOKEN)
    b = _serve_secure(pool, certs, "b", tmp_path / "token")
    a = _serve_secure(pool, certs, "a", tmp_path / "token", extra=("--peer", f"b={b.addr}"))
    flags = [*_tls_flags(ours, "client"), "--token-file", str(tmp_path / "token")]
    assert cli_json(["replicate", "--at", a.addr, "--to", "b", *flags]) == {"to": "b", "flows": 0}
    peers = cli_json(["peers", "--at", a.addr, *flags])["peers"]
    assert peers == [{"name": "b", "address": b.addr, "serving": True}]


def test_serve_limits_come_from_flags_and_name_the_flag_when_exceeded(pool: ServerPool):
    server = pool.start("small", load=(PEERS / "fed.py",), extra=("--max-message-bytes", "65536"))
    cp = run_cli(["call", "--at", server.addr, "publish", '"' + "x" * 70_000 + '"'])
    assert_one_line_error(cp, 1, "--max-message-bytes")
    cp = run_cli(["call", "--at", server.addr, "publish", '"hi"', "--max-message-bytes", "12"])
    assert_one_line_error(cp, 2, "--max-message-bytes")
    cp = run_cli(["serve", "--name", "bad", "--listen", "127.0.0.1:0", "--max-concurrent-rpcs", "0"])
    assert_one_line_error(cp, 2, "--max-concurrent-rpcs", logs=True)


def test_tls_config_objects_from_files_match_the_flags(certs):
    ours, _ = certs
    config = TlsConfig.from_files(str(ours / "a.pem"), str(ours / "a.key"), str(ours / "ca.pem"))
    assert config == tls_for(ours, "a")
