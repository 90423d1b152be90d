"""``hnv controller``: run the Network Controller REST service under uvicorn.

hnv controller --listen 127.0.0.1:8080 --db /var/lib/openhnv/controller.db [--pki DIR]

The southbound publisher runs beside the REST service: it dials every server's OVSDB
remote (``properties.connections[].managementAddresses``) and keeps its rows current.
With ``--pki DIR`` (made by ``hnv pki``) it uses the controller certificate
``DIR/<--pki-name>-cert.pem`` and key, and trusts the host CA, for ``ssl:`` remotes.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import uvicorn

from openhnv.api.app import create_app
from openhnv.controller.errors import StoreError
from openhnv.controller.northbound.service import ControllerService
from openhnv.controller.northbound.store import SqliteStore
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hnv controller", description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default=DEFAULT_LISTEN, help="HOST:PORT (default %(default)s)")
    parser.add_argument("--db", default=DEFAULT_DB, help="SQLite store file (default %(default)s)")
    parser.add_argument("--log-level", default="warning", help="uvicorn log level")
    parser.add_argument(
        "--pki", type=Path, help="hnv pki directory: SSL identity for ssl: host remotes"
    )
    parser.add_argument(
        "--pki-name",
        default=DEFAULT_PKI_NAME,
        help="controller certificate name in --pki (default %(default)s)",
    )
    args = parser.parse_args(argv)
    try:
        host, port = parse_listen(args.listen)
        ssl = controller_ssl(args.pki, args.pki_name) if args.pki else None
        service = ControllerService(SqliteStore(args.db))
    except (ValueError, StoreError, OvsdbError) as err:
        print(f"hnv controller: {err}", file=sys.stderr)
        return 2 if isinstance(err, ValueError) else 1
    publisher = Publisher(service, ssl=ssl).start()
    print(
        f"hnv controller: serving http://{args.listen}/networking/v1/ from {args.db}",
        file=sys.stderr,
        flush=True,
    )
    config = uvicorn.Config(
        create_app(service), host=host, port=port, log_level=args.log_level, access_log=False
    )
    server = uvicorn.Server(config)
    try:
        server.run()
    finally:
        publisher.stop()
        service.store.close()
    return 0 if server.started else 1
