"""A local test CA and one mTLS certificate per peer name, made with the openssl binary.

    python -m fedflow.cli.certs DIR NAME...          (what `make certs` runs)

Writes DIR/ca.pem + DIR/ca.key (the CA; made once, reused after) and, for each
NAME, DIR/NAME.pem + DIR/NAME.key: a P-256 certificate signed by the CA, usable
as both server and client certificate, named NAME (its CN and first subjectAltName:
the name `[peer_certs]` and `operator_certs` match, see `fedflow.grpc.identity`), whose
subjectAltName holds DNS:NAME, IP:127.0.0.1 and DNS:localhost, plus the comma-separated entries of $CERT_SANS
(e.g. ``CERT_SANS=IP:10.0.0.5,DNS:a.lan``). Valid for $CERT_DAYS days (default
30). Keys are written mode 600. For tests and small private federations; use
your own PKI in production.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

_EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_ca(folder: Path, days: int) -> None:
    """Create the CA in `folder` unless it is already there."""
    if (folder / "ca.pem").exists() and (folder / "ca.key").exists():
        return
    _openssl("req", "-x509", *_EC, "-keyout", str(folder / "ca.key"), "-out", str(folder / "ca.pem"),
             "-days", str(days), "-subj", "/CN=fedflow local test CA",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")


def make_cert(folder: Path, name: str, days: int, extra_sans: str = "") -> Path:
    """Sign a server+client certificate for `name`; the path of its .pem."""
    sans = f"DNS:{name},IP:127.0.0.1,DNS:localhost" + (f",{extra_sans}" if extra_sans else "")
    ext, csr = folder / f"{name}.ext", folder / f"{name}.csr"
    ext.write_text(f"subjectAltName={sans}\nbasicConstraints=critical,CA:FALSE\n"
                   "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n")
    try:
        _openssl("req", *_EC, "-keyout", str(folder / f"{name}.key"), "-out", str(csr), "-subj", f"/CN={name}")
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(folder / "ca.pem"), "-CAkey", str(folder / "ca.key"),
                 "-CAcreateserial", "-out", str(folder / f"{name}.pem"), "-days", str(days), "-extfile", str(ext))
    finally:
        csr.unlink(missing_ok=True)
        ext.unlink(missing_ok=True)
    return folder / f"{name}.pem"


def make_certs(folder: str | os.PathLike[str], names: list[str], days: int = 30, extra_sans: str = "") -> Path:
    """A CA and one certificate per name in `folder` (created, keys mode 600); the folder."""
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    old_umask = os.umask(0o077)
    try:
        make_ca(path, days)
        for name in names:
            make_cert(path, name, days, extra_sans)
    finally:
        os.umask(old_umask)
    return path


def main(argv: list[str] | None = None) -> int:
    """`python -m fedflow.cli.certs DIR NAME...`; exit 0, or 2 on bad usage, 1 if openssl fails."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2:
        print("usage: python -m fedflow.cli.certs DIR NAME...", file=sys.stderr)
        return 2
    try:
        folder = make_certs(args[0], args[1:], int(os.environ.get("CERT_DAYS", "30")), os.environ.get("CERT_SANS", ""))
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        print(f"fedflow.cli.certs: openssl failed: {exc} {detail.decode(errors='replace').strip()}", file=sys.stderr)
        return 1
    for name in args[1:]:
        print(f"{folder / name}.pem {folder / name}.key (signed by {folder / 'ca.pem'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
