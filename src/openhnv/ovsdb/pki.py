"""``hnv pki``: the CA and the controller/host certificates for OVSDB over SSL.

Layout of a PKI directory (all PEM)::

    ca-key.pem  ca-cert.pem              the CA (init)
    <name>-key.pem  <name>-cert.pem      one identity per controller or host (issue)

Keys are EC P-256. Every certificate is signed by the CA and usable as both TLS client
and server; an ovsdb-server given ``--ca-cert=ca-cert.pem`` refuses any peer whose
certificate another CA signed, and so does the controller's client.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from openhnv.ovsdb.errors import OvsdbError
from openhnv.ovsdb.server import SslFiles

CA_KEY = "ca-key.pem"
CA_CERT = "ca-cert.pem"
ROLES = ("controller", "host")
CA_DAYS = 3650
CERT_DAYS = 825
ORGANIZATION = "openhnv"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _write(path: Path, data: bytes, *, private: bool) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def init_ca(directory: Path, *, common_name: str = "openhnv OVSDB CA", force: bool = False) -> Path:
    """Create the CA in ``directory``; refuses to replace an existing one unless ``force``.

    Returns the CA certificate's path.
    """
    directory.mkdir(parents=True, exist_ok=True)
    cert_path = directory / CA_CERT
    if cert_path.exists() and not force:
        raise OvsdbError(f"a CA already exists in {directory} (use --force to replace it)")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(directory / CA_KEY, _key_pem(key), private=True)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), private=False)
    return cert_path


def _load_ca(directory: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    try:
        key = serialization.load_pem_private_key((directory / CA_KEY).read_bytes(), None)
        cert = x509.load_pem_x509_certificate((directory / CA_CERT).read_bytes())
    except FileNotFoundError:
        raise OvsdbError(f"no CA in {directory}: run `hnv pki init --dir {directory}`") from None
    except ValueError as err:
        raise OvsdbError(f"the CA in {directory} is unreadable: {err}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise OvsdbError(f"the CA key in {directory} is not an EC key")
    return key, cert


def issue(directory: Path, name: str, role: str = "host", *, days: int = CERT_DAYS) -> SslFiles:
    """Issue the certificate of controller or host ``name``; returns its SSL files."""
    if not _NAME_RE.match(name):
        raise OvsdbError(
            f"bad certificate name {name!r}: use letters, digits, '.', '_' or '-' "
            "(at most 63 characters)"
        )
    if role not in ROLES:
        raise OvsdbError(f"bad role {role!r}: expected one of {', '.join(ROLES)}")
    if days < 1:
        raise OvsdbError(f"bad validity {days} days: must be at least 1")
    ca_key, ca_cert = _load_ca(directory)
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
                    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role),
                    x509.NameAttribute(NameOID.COMMON_NAME, name),
                ]
            )
        )
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    files = ssl_files(directory, name)
    _write(files.private_key, _key_pem(key), private=True)
    _write(files.certificate, cert.public_bytes(serialization.Encoding.PEM), private=False)
    return files


def ssl_files(directory: Path, name: str) -> SslFiles:
    """The SSL file paths of identity ``name`` in a PKI directory (they may not exist yet)."""
    return SslFiles(
        private_key=directory / f"{name}-key.pem",
        certificate=directory / f"{name}-cert.pem",
        ca_cert=directory / CA_CERT,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="hnv pki", description="Create the CA and the certificates for OVSDB over SSL."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    init = sub.add_parser("init", help="create the CA")
    init.add_argument("--dir", required=True, type=Path, help="PKI directory")
    init.add_argument("--force", action="store_true", help="replace an existing CA")
    iss = sub.add_parser("issue", help="issue a controller or host certificate")
    iss.add_argument("--dir", required=True, type=Path, help="PKI directory holding the CA")
    iss.add_argument("--name", required=True, help="controller or host name, e.g. host1")
    iss.add_argument("--role", choices=ROLES, default="host")
    iss.add_argument("--days", type=int, default=CERT_DAYS, help="validity in days")
    args = parser.parse_args(argv)
    try:
        if args.command == "init":
            print(f"CA certificate: {init_ca(args.dir, force=args.force)}")
        else:
            files = issue(args.dir, args.name, args.role, days=args.days)
            print(f"{args.role} {args.name}: key {files.private_key}, cert {files.certificate}")
    except (OvsdbError, OSError) as err:
        print(f"hnv pki: {err}", file=sys.stderr)
        return 1
    return 0
