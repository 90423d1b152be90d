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
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

import uvicorn

from openhnv.api.app import create_app
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    level = getattr(logging, str(args.log_level).upper(), logging.WARNING)
    logging.basicConfig(level=level, format="hnv controller: %(name)s: %(message)s")
    replica_id = args.replica_id or f"{socket.gethostname()}-{os.getpid()}"
    try:
        host, port = parse_listen(args.listen)
        ssl = controller_ssl(args.pki, args.pki_name) if args.pki else None
        me = Candidate(replica_id, f"http://{args.listen}")
        store, leadership, store_name = open_store(args, me)
        service = ControllerService(store)
    except (ValueError, StoreError, OvsdbError) as err:
        print(f"hnv controller: {err}", file=sys.stderr)
        return 2 if isinstance(err, ValueError) else 1
    service.track_provisioning = True  # the leader, this replica or another, settles NICs

    def make_publisher() -> Publisher:
        return Publisher(service, ssl=ssl)

    replica = Replica(service, leadership, make_publisher, store_name=store_name).start()
    print(
        f"hnv controller: replica {replica_id} serving http://{args.listen}/networking/v1/"
        f" from {store_name}",
        file=sys.stderr,
        flush=True,
    )
    config = uvicorn.Config(
        create_app(service, status=replica.status),
        host=host,
        port=port,
        log_level=args.log_level,
        access_log=False,
    )
    server = uvicorn.Server(config)
    try:
        server.run()
    finally:
        replica.stop()
        service.close()
    return 0 if server.started else 1
