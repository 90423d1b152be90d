"""``hnv controller``: run the Network Controller REST service under uvicorn.

hnv controller --listen 127.0.0.1:8080 --db /var/lib/openhnv/controller.db [--pki DIR]
hnv controller --listen 10.0.0.11:8080 --store etcd://10.0.0.1:2379,10.0.0.2:2379,...

With ``--db`` (the default) the controller keeps its state in one SQLite file and
publishes southbound itself. With ``--store etcd://...`` it is one replica of a cluster
(docs/cluster.md): every replica serves the whole northbound API from the shared etcd
store, and the replica holding the etcd leader lease runs the southbound publisher,
which dials every server's OVSDB remote (``properties.connections[].managementAddresses``)
and keeps its rows current. ``GET /networking/v1/diagnostics/networkControllerState``
says which replica leads. With ``--pki DIR`` (made by ``hnv pki``) the publisher uses the
controller certificate ``DIR/<--pki-name>-cert.pem`` and key, and trusts the host CA,
for ``ssl:`` remotes.

The northbound listener (docs/security.md): ``--tls-cert``/``--tls-key`` serve HTTPS;
``--client-ca`` accepts X.509 client certificates from that CA and ``--tokens`` bearer
tokens (``hnv pki``); every request must carry one. ``--auth none`` (no authentication)
is refused unless the listener is on loopback, and logs a warning. ``--audit-log PATH``
appends every mutating request as a JSON line. Every replica of a cluster is started
with the same options and enforces them alone.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

import uvicorn

from openhnv.api.app import Security, create_app
from openhnv.api.auth import AUDIT_LOGGER, AuditLog, Authenticate, AuthError, TokenBook
from openhnv.api.tls import ListenerTls
from openhnv.controller.cluster.election import (
    LEASE_TTL,
    Candidate,
    Election,
    Leadership,
    SoleLeader,
)
from openhnv.controller.cluster.replica import Replica
from openhnv.controller.errors import StoreError
from openhnv.controller.northbound.etcd import EtcdClient, parse_endpoints
from openhnv.controller.northbound.etcd_store import DEFAULT_ROOT, EtcdStore
from openhnv.controller.northbound.service import ControllerService
from openhnv.controller.northbound.store import SqliteStore, Store
from openhnv.controller.southbound.publisher import Publisher
from openhnv.ovsdb.errors import OvsdbError
from openhnv.ovsdb.pki import ssl_files
from openhnv.ovsdb.server import SslFiles

DEFAULT_LISTEN = "127.0.0.1:8080"
DEFAULT_DB = "hnv-controller.db"
DEFAULT_PKI_NAME = "controller"
AUTH_REQUIRED = "required"
AUTH_NONE = "none"
OPEN_WARNING = (
    "WARNING: --auth none: the REST API on {listen} answers anyone who can reach it "
    "(loopback only; for development)"
)


def controller_ssl(directory: Path, name: str) -> SslFiles:
    """The controller's SSL files from an ``hnv pki`` directory; OvsdbError if missing."""
    files = ssl_files(directory, name, "controller")
    for path, what in (
        (files.private_key, "key"),
        (files.certificate, "certificate"),
        (files.ca_cert, "host CA certificate"),
    ):
        if not path.is_file():
            raise OvsdbError(
                f"--pki {directory}: no controller {what} {path} (run `hnv pki init --dir "
                f"{directory}` and `hnv pki issue --dir {directory} --name {name} "
                "--role controller`)"
            )
    return files


def parse_listen(text: str) -> tuple[str, int]:
    """``"127.0.0.1:8080"`` or ``"[::1]:8080"`` -> (host, port); ValueError when malformed."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--listen must be HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.casefold() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def listener_access(args: argparse.Namespace, host: str) -> tuple[ListenerTls | None, bool]:
    """The listener's TLS, and whether it is open (``--auth none``); ValueError naming
    the flag when the options would leave a listener unprotected or contradict."""
    listen = args.listen
    if bool(args.tls_cert) != bool(args.tls_key):
        raise ValueError("--tls-cert and --tls-key go together: give both or neither")
    tls = ListenerTls(args.tls_cert, args.tls_key, args.client_ca) if args.tls_cert else None
    if args.client_ca is not None and tls is None:
        raise ValueError("--client-ca needs TLS: give --tls-cert and --tls-key")
    credentials = args.client_ca is not None or args.tokens is not None
    if args.auth == AUTH_NONE:
        if credentials:
            raise ValueError("--auth none contradicts --client-ca/--tokens: give one or the other")
        if not is_loopback(host):
            raise ValueError(
                f"--auth none is allowed only on a loopback listener, not --listen {listen}: "
                "give --tls-cert/--tls-key with --client-ca and/or --tokens"
            )
        return tls, True
    if not credentials:
        raise ValueError(
            f"no client authentication for --listen {listen}: give --client-ca (X.509 client "
            "certificates) and/or --tokens (bearer tokens) with --tls-cert/--tls-key, "
            "or --auth none on a loopback listener"
        )
    if tls is None and not is_loopback(host):
        raise ValueError(
            f"--tokens on --listen {listen} needs TLS (bearer tokens must not cross a network "
            "in clear): give --tls-cert and --tls-key"
        )
    if tls is not None:
        tls.check()
    return tls, False


def open_store(args: argparse.Namespace, me: Candidate) -> tuple[Store, Leadership, str]:
    """The store, the leadership and the store's name for diagnostics."""
    if args.store is None:
        db = args.db or DEFAULT_DB
        return SqliteStore(db), SoleLeader(me), f"sqlite:{db}"
    if args.db is not None:
        raise ValueError("--db and --store are two different stores: give one")
    client = EtcdClient(parse_endpoints(args.store))
    store = EtcdStore(client, args.etcd_root)
    election = Election(client, me, root=args.etcd_root, ttl=args.lease_ttl)
    return store, election, str(store)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hnv controller", description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default=DEFAULT_LISTEN, help="HOST:PORT (default %(default)s)")
    parser.add_argument("--db", help=f"SQLite store file (default {DEFAULT_DB})")
    parser.add_argument(
        "--store",
        help="etcd://HOST:PORT[,HOST:PORT...]: be one replica of a cluster on etcd (not --db)",
    )
    parser.add_argument(
        "--etcd-root", default=DEFAULT_ROOT, help="key prefix in etcd (default %(default)s)"
    )
    parser.add_argument(
        "--replica-id", help="this replica's name in the cluster (default HOSTNAME-PID)"
    )
    parser.add_argument(
        "--lease-ttl",
        type=int,
        default=LEASE_TTL,
        help="seconds the leader's etcd lease lasts (default %(default)s): failover time",
    )
    parser.add_argument("--log-level", default="warning", help="log level (and uvicorn's)")
    parser.add_argument(
        "--pki", type=Path, help="hnv pki directory: SSL identity for ssl: host remotes"
    )
    parser.add_argument(
        "--pki-name",
        default=DEFAULT_PKI_NAME,
        help="controller certificate name in --pki (default %(default)s)",
    )
    parser.add_argument("--tls-cert", type=Path, help="serve HTTPS with this certificate (PEM)")
    parser.add_argument("--tls-key", type=Path, help="the private key of --tls-cert (PEM)")
    parser.add_argument(
        "--client-ca", type=Path, help="accept X.509 client certificates from this CA (PEM)"
    )
    parser.add_argument(
        "--tokens", type=Path, help="accept the bearer tokens of this file (hnv pki token)"
    )
    parser.add_argument(
        "--auth",
        choices=(AUTH_REQUIRED, AUTH_NONE),
        default=AUTH_REQUIRED,
        help="none: no authentication, allowed on a loopback listener only (default %(default)s)",
    )
    parser.add_argument("--audit-log", type=Path, help="append every mutating request here")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    level = getattr(logging, str(args.log_level).upper(), logging.WARNING)
    logging.basicConfig(level=level, format="hnv controller: %(name)s: %(message)s")
    replica_id = args.replica_id or f"{socket.gethostname()}-{os.getpid()}"
    logging.getLogger(AUDIT_LOGGER).setLevel(logging.INFO)  # audit lines whatever the level
    try:
        host, port = parse_listen(args.listen)
        tls, open_access = listener_access(args, host)
        tokens = TokenBook(args.tokens) if args.tokens is not None else None
        audit = AuditLog(args.audit_log)
        ssl = controller_ssl(args.pki, args.pki_name) if args.pki else None
        scheme = "https" if tls is not None else "http"
        me = Candidate(replica_id, f"{scheme}://{args.listen}")
        store, leadership, store_name = open_store(args, me)
        service = ControllerService(store)
    except (ValueError, StoreError, OvsdbError, AuthError) as err:
        print(f"hnv controller: {err}", file=sys.stderr)
        return 2 if isinstance(err, ValueError) else 1
    if open_access:
        logging.getLogger(__name__).warning(OPEN_WARNING.format(listen=args.listen))
    service.track_provisioning = True  # the leader, this replica or another, settles NICs

    def make_publisher() -> Publisher:
        return Publisher(service, ssl=ssl)

    replica = Replica(service, leadership, make_publisher, store_name=store_name).start()
    print(
        f"hnv controller: replica {replica_id} serving {scheme}://{args.listen}/networking/v1/"
        f" from {store_name}",
        file=sys.stderr,
        flush=True,
    )
    security = Security(
        x509=tls is not None and tls.client_ca is not None, tokens=tokens is not None
    )
    app = Authenticate(
        create_app(service, status=replica.status, security=security),
        x509=security.x509,
        tokens=tokens,
        open_access=open_access,
        audit=audit,
    )
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=args.log_level,
        access_log=False,
        **(tls.uvicorn_options() if tls is not None else {}),
    )
    server = uvicorn.Server(config)
    try:
        server.run()
    finally:
        replica.stop()
        service.close()
        audit.close()
    return 0 if server.started else 1
