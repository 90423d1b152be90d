"""The lab's REST client of the Network Controller: PUT, GET, DELETE, and waiting.

A thin edge over an ``httpx.Client`` (a real one for a running ``hnv controller``, or
the app's in-process test client): every non-2xx answer becomes one ``LabError`` that
names the method, the path, the status and the controller's own message. A client of a
controller cluster (``connect_any``) holds one connection per replica and moves to the
next replica when one cannot be reached (every replica serves the whole API).
``wait_succeeded`` polls NICs until the controller reports them programmed on their
hosts (``provisioningState`` ``Succeeded``); its clock and sleep are arguments.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from openhnv.lab.access import ApiAccess
from openhnv.lab.documents import Document, Resource
from openhnv.lab.errors import LabError

BASE_PATH = "/networking/v1"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
_POLL_SECONDS = 0.2


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:200] or response.reason_phrase
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        return f"{error.get('code', '')}: {error.get('message', '')}".strip(": ")
    return str(body)[:200]


def http_client(url: str, timeout: float, access: ApiAccess | None = None) -> httpx.Client:
    """An ``httpx.Client`` of ``url`` that trusts the API CA and presents the admin
    certificate of ``access``."""
    if access is None:
        return httpx.Client(base_url=url, timeout=timeout)
    return httpx.Client(base_url=url, timeout=timeout, verify=access.ssl_context())


class ControllerClient:
    """Northbound REST calls, relative to ``/networking/v1``."""

    def __init__(
        self,
        http: httpx.Client,
        base_path: str = BASE_PATH,
        replicas: Sequence[httpx.Client] = (),
    ) -> None:
        self.http = http
        self.base_path = base_path.rstrip("/")
        self._clients = [http, *replicas]

    @classmethod
    def connect(
        cls, url: str, timeout: float = 10.0, access: ApiAccess | None = None
    ) -> ControllerClient:
        """A client of the controller at ``url`` (``https://127.0.0.1:PORT``), with the
        admin certificate of ``access`` (None: a listener without authentication)."""
        return cls(http_client(url, timeout, access))

    @classmethod
    def connect_any(
        cls, urls: Sequence[str], timeout: float = 10.0, access: ApiAccess | None = None
    ) -> ControllerClient:
        """A client of whichever replica of a controller cluster answers."""
        if not urls:
            raise LabError("no controller URL given")
        clients = [http_client(url, timeout, access) for url in urls]
        return cls(clients[0], replicas=clients[1:])

    def close(self) -> None:
        for client in self._clients:
            client.close()

    def _call(
        self,
        method: str,
        path: str,
        body: Document | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        for attempt in range(len(self._clients)):
            try:
                response = self.http.request(
                    method, self.base_path + path, json=body, headers=headers
                )
                break
            except httpx.TransportError as exc:  # that replica is down: try the next one
                if attempt == len(self._clients) - 1:
                    raise LabError(f"{method} {path}: controller unreachable: {exc}") from exc
                position = self._clients.index(self.http)
                self.http = self._clients[(position + 1) % len(self._clients)]
            except httpx.HTTPError as exc:
                raise LabError(f"{method} {path}: controller unreachable: {exc}") from exc
        if response.status_code >= 400:
            raise LabError(
                f"{method} {path}: {response.status_code} {response.reason_phrase}:"
                f" {_message(response)}"
            )
        return response

    def put(self, resource: Resource, *, if_match: str | None = None) -> Document:
        """Create or replace; returns the controller's document (instanceId, etag, ...).
        ``if_match``: the etag the resource must still have (412 otherwise)."""
        headers = None if if_match is None else {"If-Match": if_match}
        document: Document = self._call("PUT", resource.path, resource.body, headers).json()
        return document

    def get(self, path: str) -> Document:
        document: Document = self._call("GET", path).json()
        return document

    def list(self, collection: str) -> list[Document]:
        value = self.get(f"/{collection}").get("value", [])
        return [d for d in value if isinstance(d, dict)]

    def delete(self, path: str) -> None:
        self._call("DELETE", path)

    def diagnostics(self) -> Document:
        """The replica's ``diagnostics/networkControllerState`` (who leads, the store)."""
        return self.get("/diagnostics/networkControllerState")

    def reachable(self) -> bool:
        """True once the controller answers its configuration singleton."""
        try:
            response = self.http.get(
                f"{self.base_path}/virtualNetworkManager/configuration", timeout=1.0
            )
        except httpx.HTTPError:
            return False
        return response.status_code == 200


def provisioning_state(document: Document) -> str:
    properties = document.get("properties", {})
    return str(properties.get("provisioningState", "")) if isinstance(properties, dict) else ""


@dataclass(frozen=True, slots=True)
class NicState:
    """One NIC's provisioning state as the controller reports it."""

    name: str
    state: str


def nic_states(client: ControllerClient, names: Iterable[str]) -> list[NicState]:
    wanted = {n.lower(): n for n in names}
    found = {
        str(d.get("resourceId", "")).lower(): provisioning_state(d)
        for d in client.list("networkInterfaces")
    }
    return [NicState(name, found.get(key, "missing")) for key, name in wanted.items()]


def wait_succeeded(
    client: ControllerClient,
    names: Iterable[str],
    timeout: float,
    progress: Callable[[str], None],
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Return when every NIC in ``names`` is ``Succeeded``; LabError on Failed or timeout."""
    names = list(names)
    deadline = clock() + timeout
    reported = -1
    while True:
        states = nic_states(client, names)
        done = [s for s in states if s.state == SUCCEEDED]
        failed = [s for s in states if s.state == FAILED]
        if failed:
            raise LabError("NICs failed to provision: " + ", ".join(s.name for s in failed))
        if len(done) != reported:
            reported = len(done)
            progress(f"NICs programmed on their hosts: {len(done)}/{len(states)}")
        if len(done) == len(states):
            return
        if clock() >= deadline:
            pending = ", ".join(
                f"{s.name} ({s.state or 'no state'})" for s in states if s.state != SUCCEEDED
            )
            raise LabError(
                f"NICs not Succeeded after {timeout:g} s: {pending}{_server_hint(client)}"
            )
        sleep(_POLL_SECONDS)


def _server_hint(client: ControllerClient) -> str:
    """Why hosts may lag: servers whose configurationState is not Success."""
    notes = []
    for server in client.list("servers"):
        state = server.get("properties", {}).get("configurationState")
        if not isinstance(state, dict) or state.get("status") == "Success":
            continue
        codes = [str(d.get("code")) for d in state.get("detailedInfo", []) if isinstance(d, dict)]
        notes.append(f"{server.get('resourceId')}: {state.get('status')} {' '.join(codes)}")
    return f"; servers: {'; '.join(notes)}" if notes else ""


def instance_id(document: Document) -> str:
    value: Any = document.get("instanceId")
    if not isinstance(value, str) or not value:
        raise LabError(f"{document.get('resourceRef', 'resource')}: the answer has no instanceId")
    return value
