"""``hnv pki``: the CAs and the controller/host certificates for OVSDB over SSL.

As Open vSwitch's ``ovs-pki`` does with its controllerca and switchca, there are two
CAs, so that each side trusts only the other role: a host's ovsdb-server trusts the
controller CA alone (it accepts the controller's certificate, not another host's), and
the controller trusts the host CA alone. Layout of a PKI directory (all PEM)::

    controllerca-key.pem  controllerca-cert.pem    signs controller certificates
    hostca-key.pem        hostca-cert.pem          signs host certificates
    <name>-key.pem        <name>-cert.pem          one identity per controller or host

Keys are EC P-256; private keys are mode 0600. ``issue`` returns the identity's
``SslFiles`` whose ``ca_cert`` is the CA of the *peer* role.
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

ROLES = ("controller", "host")
PEER_ROLE = {"controller": "host", "host": "controller"}
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


def ca_cert_path(directory: Path, role: str) -> Path:
    """The certificate of the CA that signs ``role`` certificates."""
    return directory / f"{role}ca-cert.pem"


def _ca_key_path(directory: Path, role: str) -> Path:
    return directory / f"{role}ca-key.pem"


def init_ca(directory: Path, *, label: str = "openhnv", force: bool = False) -> dict[str, Path]:
    """Create the controller CA and the host CA in ``directory``.

    Refuses to replace existing CAs unless ``force``. Returns role -> CA certificate path.
    """
    directory.mkdir(parents=True, exist_ok=True)
    existing = [ca_cert_path(directory, r) for r in ROLES if ca_cert_path(directory, r).exists()]
    if existing and not force:
        raise OvsdbError(f"CAs already exist in {directory} (use --force to replace them)")
    return {role: _create_ca(directory, role, f"{label} OVSDB {role} CA") for role in ROLES}


def _create_ca(directory: Path, role: str, common_name: str) -> Path:
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
    cert_path = ca_cert_path(directory, role)
    _write(_ca_key_path(directory, role), _key_pem(key), private=True)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), private=False)
    return cert_path


def _load_ca(directory: Path, role: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    try:
        key = serialization.load_pem_private_key(_ca_key_path(directory, role).read_bytes(), None)
        cert = x509.load_pem_x509_certificate(ca_cert_path(directory, role).read_bytes())
    except FileNotFoundError:
        raise OvsdbError(
            f"no {role} CA in {directory}: run `hnv pki init --dir {directory}`"
        ) from None
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
    ca_key, ca_cert = _load_ca(directory, role)
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
    files = ssl_files(directory, name, role)
    _write(files.private_key, _key_pem(key), private=True)
    _write(files.certificate, cert.public_bytes(serialization.Encoding.PEM), private=False)
    return files


def ssl_files(directory: Path, name: str, role: str) -> SslFiles:
    """The SSL files of identity ``name`` of ``role``: its key, its certificate, and the
    CA certificate of the peer role, the only one it trusts (they may not exist yet)."""
    if role not in ROLES:
        raise OvsdbError(f"bad role {role!r}: expected one of {', '.join(ROLES)}")
    return SslFiles(
        private_key=directory / f"{name}-key.pem",
        certificate=directory / f"{name}-cert.pem",
        ca_cert=ca_cert_path(directory, PEER_ROLE[role]),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="hnv pki", description="Create the CA and the certificates for OVSDB over SSL."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    init = sub.add_parser("init", help="create the controller CA and the host CA")
    init.add_argument("--dir", required=True, type=Path, help="PKI directory")
    init.add_argument("--force", action="store_true", help="replace existing CAs")
    iss = sub.add_parser("issue", help="issue a controller or host certificate")
    iss.add_argument("--dir", required=True, type=Path, help="PKI directory holding the CA")
    iss.add_argument("--name", required=True, help="controller or host name, e.g. host1")
    iss.add_argument("--role", choices=ROLES, default="host")
    iss.add_argument("--days", type=int, default=CERT_DAYS, help="validity in days")
    args = parser.parse_args(argv)
    try:
        if args.command == "init":
            for role, path in init_ca(args.dir, force=args.force).items():
                print(f"{role} CA certificate: {path}")
        else:
            files = issue(args.dir, args.name, args.role, days=args.days)
            print(
                f"{args.role} {args.name}: key {files.private_key}, cert {files.certificate}, "
                f"trusts {files.ca_cert}"
            )
    except (OvsdbError, OSError) as err:
        print(f"hnv pki: {err}", file=sys.stderr)
        return 1
    return 0
