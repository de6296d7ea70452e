"""Throwaway certificates for TLS tests, made with the `openssl` command."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Pki:
    """A CA, a server certificate for 127.0.0.1/localhost and client certificates."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_client_cert: Path  # signed by another CA
    other_client_key: Path
    combined: Path  # client certificate and key in one PEM
    garbage: Path  # a file that is no certificate


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def _make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    key, cert = directory / f"{name}.key", directory / f"{name}.pem"
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(cert),
    )  # fmt: skip
    return cert, key


def _make_leaf(
    directory: Path, name: str, ca: tuple[Path, Path], extensions: str
) -> tuple[Path, Path]:
    key, csr, cert = directory / f"{name}.key", directory / f"{name}.csr", directory / f"{name}.pem"
    ext = directory / f"{name}.ext"
    ext.write_text(extensions)
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
        "-keyout", str(key), "-out", str(csr),
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
        "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(cert),
    )  # fmt: skip
    return cert, key


def make_pki(directory: Path) -> Pki:
    """Throwaway certificates (RSA 2048, two days) made with the `openssl` command."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make test certificates")
    ca = _make_ca(directory, "test-ca")
    other_ca = _make_ca(directory, "other-ca")
    server = _make_leaf(
        directory,
        "server",
        ca,
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    client = _make_leaf(directory, "client", ca, "extendedKeyUsage=clientAuth\n")
    other = _make_leaf(directory, "intruder", other_ca, "extendedKeyUsage=clientAuth\n")
    combined = directory / "client-combined.pem"
    combined.write_bytes(client[0].read_bytes() + client[1].read_bytes())
    garbage = directory / "garbage.pem"
    garbage.write_text("not a certificate\n")
    return Pki(
        ca[0], server[0], server[1], client[0], client[1], other[0], other[1], combined, garbage
    )
