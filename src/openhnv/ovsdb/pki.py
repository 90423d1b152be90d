"""``hnv pki``: the CAs and the controller/host certificates for OVSDB over SSL.

As Open vSwitch's ``ovs-pki`` does with its controllerca and switchca, there are two
CAs, so that each side trusts only the other role: a host's ovsdb-server trusts the
controller CA alone (it accepts the controller's certificate, not another host's), and
the controller trusts the host CA alone. Layout of a PKI directory (all PEM)::

    controllerca-key.pem  controllerca-cert.pem    signs controller certificates
    hostca-key.pem        hostca-cert.pem          signs host certificates
    <name>-key.pem        <name>-cert.pem          one identity per controller or host

Keys are EC P-256; private keys are mode 0600. ``issue`` returns the identity's
``SslFiles`` whose ``ca_cert`` is the CA of the *peer* role. Its command line,
``hnv pki``, lives with the API, which adds its own CA.
"""

from __future__ import annotations

import re
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from openhnv.ovsdb import certs
from openhnv.ovsdb.errors import OvsdbError
from openhnv.ovsdb.server import SslFiles

ROLES = ("controller", "host")
PEER_ROLE = {"controller": "host", "host": "controller"}
CA_DAYS = 3650
CERT_DAYS = 825
ORGANIZATION = "openhnv"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


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
    made = {}
    for role in ROLES:
        subject = certs.name(f"{label} OVSDB {role} CA", organization=ORGANIZATION)
        ca = certs.new_authority(subject, CA_DAYS, certs.ec_key())
        certs.save(
            _ca_key_path(directory, role), ca_cert_path(directory, role), ca.key, ca.certificate
        )
        made[role] = ca_cert_path(directory, role)
    return made


def _load_ca(directory: Path, role: str) -> certs.Authority:
    try:
        return certs.load_authority(_ca_key_path(directory, role), ca_cert_path(directory, role))
    except FileNotFoundError:
        raise OvsdbError(
            f"no {role} CA in {directory}: run `hnv pki init --dir {directory}`"
        ) from None
    except ValueError as err:
        raise OvsdbError(f"the CA in {directory} is unreadable: {err}") from None


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
    ca = _load_ca(directory, role)
    key = certs.ec_key()
    cert = certs.sign(
        ca,
        certs.name(name, organization=ORGANIZATION, unit=role),
        key,
        days,
        usages=(ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH),
        alt_names=(x509.DNSName(name),),
    )
    files = ssl_files(directory, name, role)
    certs.save(files.private_key, files.certificate, key, cert)
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
