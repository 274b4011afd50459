"""The committed gRPC stubs in fedflow/v1 are exactly what `make proto` generates."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GENERATED = ("*_pb2.py", "*_pb2.pyi", "*_pb2_grpc.py")


def _stubs(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for pattern in GENERATED for p in sorted(folder.glob(pattern))}


def test_committed_stubs_match_a_fresh_generation(tmp_path: Path) -> None:
    protos = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "proto" / "fedflow" / "v1").glob("*.proto"))
    assert protos, "proto/fedflow/v1 holds the service definition"
    out = str(tmp_path)
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-Iproto", f"--python_out={out}",
                    f"--pyi_out={out}", f"--grpc_python_out={out}", *protos],
                   cwd=ROOT, check=True, capture_output=True, timeout=60)
    fresh = _stubs(tmp_path / "fedflow" / "v1")
    committed = _stubs(ROOT / "fedflow" / "v1")
    assert fresh, "protoc generated nothing"
    assert sorted(committed) == sorted(fresh), "run `make proto` and commit fedflow/v1"
    stale = [name for name in fresh if committed[name] != fresh[name]]
    assert not stale, f"stale generated stubs {stale}: run `make proto` and commit fedflow/v1"


def test_stubs_import_as_a_package_module() -> None:
    from fedflow.v1 import fedflow_pb2, fedflow_pb2_grpc

    services = set(fedflow_pb2.DESCRIPTOR.services_by_name)
    assert services == {"PeerService", "ControlService"}
    assert hasattr(fedflow_pb2_grpc, "PeerServiceStub") and hasattr(fedflow_pb2_grpc, "ControlServiceStub")
