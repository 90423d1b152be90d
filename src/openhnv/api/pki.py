"""``hnv pki``: certificates and tokens for OVSDB over SSL and for the northbound API.

The OVSDB part (the controller CA, the host CA and their identities) is
``openhnv.ovsdb.pki``. This module adds the northbound API's own CA and credentials, so
that no OVSDB certificate opens the REST API and no API certificate opens a host::

    apica-key.pem   apica-cert.pem     signs the REST listener's and the clients' certificates
    <name>-key.pem  <name>-cert.pem    ``api-server``: the listener (serverAuth, DNS + IP SANs)
                                       ``admin``/``reader``: a client, its role in the subject's OU
    api-tokens.json                    bearer tokens: name, role, SHA-256 of the token

A client certificate's identity is its subject (CN = the name); its role is the subject's
OU, which only the API CA's holder can set. A token is ``hnv_`` and 43 random URL-safe
characters (256 bits); the file keeps only its SHA-256, so ``token`` prints it once.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import json
import re
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from openhnv.api.auth import ROLES, AuthError, hash_token
from openhnv.ovsdb import certs
from openhnv.ovsdb import pki as ovsdb_pki
from openhnv.ovsdb.errors import OvsdbError

API_CA = "apica"
API_SERVER = "api-server"
CLIENT_ROLES = ROLES  # admin, reader
API_ROLES = (API_SERVER, *CLIENT_ROLES)
TOKENS_FILE = "api-tokens.json"
TOKEN_PREFIX = "hnv_"
TOKEN_BYTES = 32
DEFAULT_SERVER_IPS = ("127.0.0.1", "::1")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")  # as OVSDB identities
MAX_TOKEN_NAME = 64


def api_ca_cert(directory: Path) -> Path:
    """The API CA's certificate: clients verify the listener with it (``--cacert``), the
    listener verifies client certificates with it (``--client-ca``)."""
    return directory / f"{API_CA}-cert.pem"


def _api_ca_key(directory: Path) -> Path:
    return directory / f"{API_CA}-key.pem"


def init_api_ca(directory: Path, *, force: bool = False) -> Path:
    """Create the API CA in ``directory``; refuses to replace one unless ``force``."""
    directory.mkdir(parents=True, exist_ok=True)
    cert_path = api_ca_cert(directory)
    if cert_path.exists() and not force:
        raise AuthError(f"an API CA already exists in {directory} (use --force to replace it)")
    subject = certs.name("openhnv northbound API CA", organization=ovsdb_pki.ORGANIZATION)
    ca = certs.new_authority(subject, ovsdb_pki.CA_DAYS, certs.ec_key())
    certs.save(_api_ca_key(directory), cert_path, ca.key, ca.certificate)
    return cert_path


def _load_api_ca(directory: Path) -> certs.Authority:
    try:
        return certs.load_authority(_api_ca_key(directory), api_ca_cert(directory))
    except FileNotFoundError:
        raise AuthError(f"no API CA in {directory}: run `hnv pki init --dir {directory}`") from None
    except ValueError as err:
        raise AuthError(f"the API CA in {directory} is unreadable: {err}") from None


def _alternative_names(name: str, ips: Sequence[str]) -> list[x509.GeneralName]:
    found: list[x509.GeneralName] = [x509.DNSName(name)]
    for text in ips:
        try:
            found.append(x509.IPAddress(ipaddress.ip_address(text)))
        except ValueError:
            raise AuthError(f"--ip {text!r} is not an IP address") from None
    return found


def issue_api(
    directory: Path,
    name: str,
    role: str,
    *,
    ips: Sequence[str] = DEFAULT_SERVER_IPS,
    days: int = ovsdb_pki.CERT_DAYS,
) -> tuple[Path, Path]:
    """Issue the API certificate ``name`` of ``role`` (``api-server``, ``admin`` or
    ``reader``); returns (certificate, key). A server certificate names ``name`` and
    ``ips`` as its subject alternative names."""
    if not NAME_RE.match(name):
        raise AuthError(
            f"bad certificate name {name!r}: use letters, digits, '.', '_' or '-' "
            "(at most 63 characters)"
        )
    if role not in API_ROLES:
        raise AuthError(f"bad API role {role!r}: expected one of {', '.join(API_ROLES)}")
    if days < 1:
        raise AuthError(f"bad validity {days} days: must be at least 1")
    ca = _load_api_ca(directory)
    key = certs.ec_key()
    server = role == API_SERVER
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    cert = certs.sign(
        ca,
        certs.name(name, organization=ovsdb_pki.ORGANIZATION, unit=role),
        key,
        days,
        usages=(usage,),
        alt_names=_alternative_names(name, ips) if server else (),
    )
    cert_path, key_path = directory / f"{name}-cert.pem", directory / f"{name}-key.pem"
    certs.save(key_path, cert_path, key, cert)
    return cert_path, key_path


def new_token(tokens_file: Path, name: str, role: str) -> str:
    """Add a bearer token ``name`` of ``role`` to ``tokens_file`` (kept as its SHA-256,
    mode 0600); returns the token, which is shown nowhere else."""
    if role not in CLIENT_ROLES:
        raise AuthError(f"bad token role {role!r}: expected one of {', '.join(CLIENT_ROLES)}")
    if not name or len(name) > MAX_TOKEN_NAME or not name.isprintable():
        raise AuthError(f"bad token name {name!r}: 1..{MAX_TOKEN_NAME} printable characters")
    entries: list[dict[str, str]] = []
    if tokens_file.exists():
        try:
            entries = list(json.loads(tokens_file.read_text())["tokens"])
        except (ValueError, KeyError, TypeError) as err:
            raise AuthError(f"{tokens_file} is not a token file: {err}") from None
    if any(entry.get("name") == name for entry in entries):
        raise AuthError(f"{tokens_file} already has a token named {name!r}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
    created = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    entries.append({"name": name, "role": role, "sha256": hash_token(token), "created": created})
    tokens_file.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"tokens": entries}, indent=2) + "\n"
    certs.write_pem(tokens_file, text.encode(), private=True)
    return token


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hnv pki",
        description="Create the CAs, certificates and tokens for OVSDB over SSL and the API.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    init = sub.add_parser("init", help="create the controller CA, the host CA and the API CA")
    init.add_argument("--dir", required=True, type=Path, help="PKI directory")
    init.add_argument("--force", action="store_true", help="replace existing CAs")
    iss = sub.add_parser("issue", help="issue a certificate")
    iss.add_argument("--dir", required=True, type=Path, help="PKI directory holding the CAs")
    iss.add_argument("--name", required=True, help="its name (CN), e.g. host1, nc1, alice")
    roles = (*ovsdb_pki.ROLES, *API_ROLES)
    iss.add_argument(
        "--role",
        choices=roles,
        default="host",
        help="controller/host: OVSDB; api-server: the REST listener; admin/reader: an API client",
    )
    iss.add_argument(
        "--ip",
        action="append",
        help="api-server: an IP address clients use (repeat; default 127.0.0.1 and ::1)",
    )
    iss.add_argument("--days", type=int, default=ovsdb_pki.CERT_DAYS, help="validity in days")
    tok = sub.add_parser("token", help="add a bearer token for scripts; prints it once")
    tok.add_argument("--dir", required=True, type=Path, help=f"PKI directory (holds {TOKENS_FILE})")
    tok.add_argument("--name", required=True, help="who uses it (shown in the audit log)")
    tok.add_argument("--role", choices=CLIENT_ROLES, default="reader")
    tok.add_argument("--tokens", type=Path, help=f"token file (default DIR/{TOKENS_FILE})")
    return parser


def _init(directory: Path, force: bool) -> None:
    """Create the CAs that are missing (all of them with ``force``)."""
    ovsdb_present = ovsdb_pki.ca_cert_path(directory, ovsdb_pki.ROLES[0]).exists()
    api_present = api_ca_cert(directory).exists()
    if ovsdb_present and api_present and not force:
        raise AuthError(f"the CAs already exist in {directory} (use --force to replace them)")
    if force or not ovsdb_present:
        for role, path in ovsdb_pki.init_ca(directory, force=force).items():
            print(f"{role} CA certificate: {path}")
    if force or not api_present:
        print(f"API CA certificate: {init_api_ca(directory, force=force)}")


def _run(args: argparse.Namespace) -> None:
    if args.command == "init":
        _init(args.dir, args.force)
    elif args.command == "token":
        print(new_token(args.tokens or args.dir / TOKENS_FILE, args.name, args.role))
    elif args.role in ovsdb_pki.ROLES:
        files = ovsdb_pki.issue(args.dir, args.name, args.role, days=args.days)
        print(
            f"{args.role} {args.name}: key {files.private_key}, cert {files.certificate}, "
            f"trusts {files.ca_cert}"
        )
    else:
        ips = args.ip or DEFAULT_SERVER_IPS
        cert, key = issue_api(args.dir, args.name, args.role, ips=ips, days=args.days)
        print(f"{args.role} {args.name}: key {key}, cert {cert}, CA {api_ca_cert(args.dir)}")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        _run(args)
    except (OvsdbError, AuthError, OSError) as err:
        print(f"hnv pki: {err}", file=sys.stderr)
        return 1
    return 0
