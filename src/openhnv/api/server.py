"""``hnv controller``: run the Network Controller REST service under uvicorn.

hnv controller --listen 127.0.0.1:8080 --db /var/lib/openhnv/controller.db
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import uvicorn

from openhnv.api.app import create_app
from openhnv.controller.service import ControllerService
from openhnv.controller.store import SqliteStore, StoreError

DEFAULT_LISTEN = "127.0.0.1:8080"
DEFAULT_DB = "hnv-controller.db"


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
    args = parser.parse_args(argv)
    try:
        host, port = parse_listen(args.listen)
        service = ControllerService(SqliteStore(args.db))
    except (ValueError, StoreError) as err:
        print(f"hnv controller: {err}", file=sys.stderr)
        return 2 if isinstance(err, ValueError) else 1
    print(
        f"hnv controller: serving http://{args.listen}/networking/v1/ from {args.db}",
        file=sys.stderr,
        flush=True,
    )
    config = uvicorn.Config(
        create_app(service), host=host, port=port, log_level=args.log_level, access_log=False
    )
    server = uvicorn.Server(config)
    server.run()
    service.store.close()
    return 0 if server.started else 1
