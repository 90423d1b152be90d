"""An etcd v3 client for the controller: the calls it needs, over every member it knows.

Every call goes to etcd's v3 JSON gateway (``/v3/...`` on the client URL of each
member). Unary calls (range, txn, lease grant/keep-alive/revoke, status) go through
``etcd3gw`` (OpenStack's maintained gateway client); the watch stream is read here with
``httpx``, because etcd3gw's watcher drops the responses that say a watch was cancelled
(``compact_revision``), which a controller following the store must see.

``EtcdClient(endpoints)`` prefers one member and moves to the next when a member
refuses the connection or answers "unavailable" (no leader, no quorum). A call that
finds no member able to answer within ``timeout`` raises ``StoreUnavailable``: the REST
layer answers 503, never hangs. Keys and values are text on our side; the gateway's
base64 and its int64-as-string fields stay inside this module.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import etcd3gw
import etcd3gw.exceptions
import httpx

from openhnv.controller.errors import StoreError
from openhnv.controller.northbound.store import HistoryLost, StoreUnavailable

SCHEME = "etcd://"
DEFAULT_PORT = 2379
API_PATH = "/v3/"  # etcd >= 3.4
REQUEST_TIMEOUT = 2.0  # seconds for one call to one member
CONNECT_TIMEOUT = 1.0
PAGE = 500  # keys per range request when reading a whole prefix

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One etcd member's client URL, ``HOST:PORT``."""

    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self}"


def parse_endpoints(text: str) -> list[Endpoint]:
    """``etcd://HOST:PORT[,HOST:PORT...]`` -> endpoints; ValueError naming what is wrong."""
    if not text.startswith(SCHEME):
        raise ValueError(f"--store {text!r}: expected etcd://HOST:PORT[,HOST:PORT...]")
    found: list[Endpoint] = []
    for part in text[len(SCHEME) :].split(","):
        part = part.strip().rstrip("/")
        host, sep, port = part.rpartition(":")
        if not sep:
            host, port = part, str(DEFAULT_PORT)
        host = host.strip("[]")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"--store {text!r}: {part!r} is not HOST:PORT")
        found.append(Endpoint(host, int(port)))
    return found


def key_bytes(key: str) -> str:
    return base64.b64encode(key.encode()).decode()


def range_end_of(prefix: str) -> str:
    """The gateway's ``range_end`` covering every key that starts with ``prefix``."""
    raw = bytearray(prefix.encode())
    raw[-1] += 1  # our prefixes end in ASCII, never in 0xff
    return base64.b64encode(bytes(raw)).decode()


@dataclass(frozen=True, slots=True)
class KeyValue:
    """A key as etcd holds it."""

    key: str
    value: bytes
    mod_revision: int
    create_revision: int
    lease: int


@dataclass(frozen=True, slots=True)
class Event:
    """One watch event: a put (``kv.value`` set) or a delete (``deleted``)."""

    kv: KeyValue
    deleted: bool


def _key_value(raw: Mapping[str, Any]) -> KeyValue:
    return KeyValue(
        key=base64.b64decode(raw["key"]).decode(),
        value=base64.b64decode(raw.get("value", "")),
        mod_revision=int(raw.get("mod_revision", 0)),
        create_revision=int(raw.get("create_revision", 0)),
        lease=int(raw.get("lease", 0)),
    )


def header_revision(response: Mapping[str, Any]) -> int:
    return int(response.get("header", {}).get("revision", 0))


class EtcdClient:
    """The calls the controller makes, against the first member that can answer."""

    def __init__(self, endpoints: Sequence[Endpoint], timeout: float = REQUEST_TIMEOUT) -> None:
        if not endpoints:
            raise ValueError("an etcd client needs at least one endpoint")
        self.endpoints = list(endpoints)
        self.timeout = timeout
        self._clients = [
            etcd3gw.Etcd3Client(e.host, e.port, timeout=timeout, api_path=API_PATH)
            for e in self.endpoints
        ]
        self._preferred = 0
        self._lock = threading.Lock()
        self._http = httpx.Client(timeout=httpx.Timeout(timeout, connect=CONNECT_TIMEOUT))
        self._closed = False

    def __str__(self) -> str:
        return SCHEME + ",".join(str(e) for e in self.endpoints)

    def close(self) -> None:
        """Close every connection; a watch stream open in another thread ends."""
        self._closed = True
        self._http.close()
        for client in self._clients:
            client.session.close()

    # -- unary calls -------------------------------------------------------------------
    def call(self, path: str, body: Json) -> Json:
        """POST ``body`` to ``/v3/<path>`` on a member that answers; StoreUnavailable if none.

        A member that refuses the connection or says it is unavailable is skipped; a
        member that does not answer within the timeout ends the call (another one would
        most likely be just as stuck without quorum), and the next call starts elsewhere.
        """
        with self._lock:
            start = self._preferred
        reasons: list[str] = []
        for step in range(len(self._clients)):
            index = (start + step) % len(self._clients)
            client = self._clients[index]
            try:
                answer: Json = client.post(client.get_url(path), json=body)
            except etcd3gw.exceptions.ConnectionTimeoutError:
                self._avoid(index)
                raise StoreUnavailable(
                    f"etcd member {self.endpoints[index]} did not answer {path} within "
                    f"{self.timeout:g} s (no quorum?)"
                ) from None
            except (
                etcd3gw.exceptions.ConnectionFailedError,
                etcd3gw.exceptions.InternalServerError,
            ) as err:
                self._avoid(index)
                reasons.append(f"{self.endpoints[index]}: {_reason(err)}")
                continue
            except etcd3gw.exceptions.Etcd3Exception as err:
                raise StoreError(f"etcd refused {path}: {_reason(err)}") from None
            with self._lock:
                self._preferred = index
            return answer
        raise StoreUnavailable(f"no etcd member can answer ({'; '.join(reasons)})")

    def _avoid(self, index: int) -> None:
        with self._lock:
            if self._preferred == index:
                self._preferred = (index + 1) % len(self._clients)

    def range(
        self,
        key: str,
        *,
        prefix: bool = False,
        revision: int | None = None,
        limit: int | None = None,
        start: str | None = None,
    ) -> tuple[int, list[KeyValue], bool]:
        """(header revision, keys, more) of ``key`` (every key under it with ``prefix``).

        ``start`` begins a prefix range later (paging); linearizable unless ``revision``
        pins an older snapshot.
        """
        body: Json = {"key": key_bytes(start if start is not None else key)}
        if prefix:
            body["range_end"] = range_end_of(key)
        if revision is not None:
            body["revision"] = revision
        if limit is not None:
            body["limit"] = limit
        answer = self.call("kv/range", body)
        kvs = [_key_value(raw) for raw in answer.get("kvs", [])]
        return header_revision(answer), kvs, bool(answer.get("more", False))

    def range_all(self, prefix: str) -> tuple[int, list[KeyValue]]:
        """Every key under ``prefix`` at one revision, read in pages."""
        revision, kvs, more = self.range(prefix, prefix=True, limit=PAGE)
        found = list(kvs)
        while more and kvs:
            start = kvs[-1].key + "\0"
            _, kvs, more = self.range(
                prefix, prefix=True, revision=revision, limit=PAGE, start=start
            )
            found += kvs
        return revision, found

    def txn(self, compare: list[Json], success: list[Json]) -> tuple[bool, int]:
        """(succeeded, revision) of one transaction; nothing runs on failure."""
        answer = self.call("kv/txn", {"compare": compare, "success": success, "failure": []})
        return bool(answer.get("succeeded", False)), header_revision(answer)

    def lease_grant(self, ttl: int) -> int:
        answer = self.call("lease/grant", {"TTL": ttl, "ID": 0})
        if answer.get("error"):
            raise StoreError(f"etcd refused a lease of {ttl} s: {answer['error']}")
        return int(answer["ID"])

    def lease_keepalive(self, lease: int) -> int:
        """The lease's remaining TTL after renewing it (<= 0: it has expired)."""
        answer = self.call("lease/keepalive", {"ID": lease})
        return int(answer.get("result", {}).get("TTL", -1))

    def lease_revoke(self, lease: int) -> None:
        self.call("kv/lease/revoke", {"ID": lease})

    def member_status(self, index: int) -> Json:
        """One member's ``maintenance/status`` (leader, raft term); raises if it is down."""
        client = self._clients[index]
        try:
            answer: Json = client.post(client.get_url("maintenance/status"), json={})
        except etcd3gw.exceptions.Etcd3Exception as err:
            raise StoreUnavailable(f"{self.endpoints[index]}: {_reason(err)}") from None
        return answer

    # -- watch -------------------------------------------------------------------------
    def watch(
        self, prefix: str, start_revision: int, wait: float
    ) -> Iterator[tuple[int, list[Event]]]:
        """(header revision, events) of each watch response for keys under ``prefix``.

        Starts at ``start_revision``; ends when no response comes for ``wait`` seconds
        (or the caller stops iterating). ``HistoryLost`` when etcd compacted the start
        away; ``StoreUnavailable`` when no member takes the watch.
        """
        request = {
            "create_request": {
                "key": key_bytes(prefix),
                "range_end": range_end_of(prefix),
                "start_revision": start_revision,
            }
        }
        with self._lock:
            start = self._preferred
        reasons: list[str] = []
        for step in range(len(self.endpoints)):
            endpoint = self.endpoints[(start + step) % len(self.endpoints)]
            timeout = httpx.Timeout(self.timeout, connect=CONNECT_TIMEOUT, read=wait)
            try:
                with self._http.stream(
                    "POST", f"{endpoint.url}{API_PATH}watch", json=request, timeout=timeout
                ) as response:
                    if response.status_code != 200:
                        reasons.append(f"{endpoint}: HTTP {response.status_code}")
                        continue
                    yield from _responses(response.iter_lines(), start_revision)
                    return
            except httpx.ReadTimeout:
                return  # nothing happened for ``wait`` seconds
            except (httpx.TransportError, RuntimeError) as err:
                if self._closed:  # closed under the stream: the caller is stopping
                    return
                reasons.append(f"{endpoint}: {type(err).__name__}")
                continue
        raise StoreUnavailable(f"no etcd member takes a watch ({'; '.join(reasons)})")


def _responses(lines: Iterator[str], start_revision: int) -> Iterator[tuple[int, list[Event]]]:
    for line in lines:
        if not line.strip():
            continue
        message = json.loads(line)
        if "error" in message:
            raise StoreUnavailable(f"etcd ended a watch: {message['error']}")
        result = message.get("result", {})
        if int(result.get("compact_revision", 0)) > 0:
            raise HistoryLost(
                f"etcd compacted its history up to revision {result['compact_revision']}; "
                f"a watch from {start_revision} cannot replay it"
            )
        if result.get("canceled"):
            raise StoreUnavailable(f"etcd cancelled a watch: {result.get('cancel_reason', '')}")
        events = [
            Event(_key_value(raw["kv"]), raw.get("type") == "DELETE")
            for raw in result.get("events", [])
        ]
        yield header_revision(result), events


def _reason(err: etcd3gw.exceptions.Etcd3Exception) -> str:
    """A short reason: etcd's own message, or what the connection says."""
    detail = err.detail_text or ""
    try:
        parsed = json.loads(detail)
        detail = str(parsed.get("error") or parsed.get("message") or detail)
    except (ValueError, AttributeError):
        pass
    text = detail or " ".join(str(a) for a in err.args if a) or type(err).__name__
    for known in ("Connection refused", "timed out", "Connection reset"):
        if known in text:
            return known.lower()
    return text.strip()[:200]
