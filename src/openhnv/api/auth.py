"""Who is calling the northbound API, and may they: X.509 client certificates, bearer
tokens, two roles, 401 and 403, and the audit of every mutating request.

As the Network Controller's ``X509`` client authentication, a client certificate is
verified against the API CA during the TLS handshake (``openhnv.api.tls``; one from
another CA never gets a connection); its identity is its subject, its CN the name, its OU
the role. Scripts send ``Authorization: Bearer <token>``; the token file keeps each
token's SHA-256 with a name and a role (``hnv pki token``). A header that is present
must be valid, even when a certificate was also sent.

``reader`` may GET and HEAD; ``admin`` may do everything. No credentials, or invalid
ones: **401** with ``WWW-Authenticate`` naming the schemes the listener accepts. A role
that does not allow the method: **403**. ``Authenticate`` wraps the whole application,
so no route (the OpenAPI document included) answers an unauthenticated request. With
``open_access`` (``--auth none``, loopback only) every caller is an anonymous admin.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from cryptography import x509
from cryptography.x509.oid import NameOID
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ADMIN = "admin"
READER = "reader"
ROLES = (ADMIN, READER)
READ_METHODS = frozenset({"GET", "HEAD"})
REALM = "openhnv"
BEARER = "bearer"
VIA_X509 = "x509"
VIA_TOKEN = "token"
VIA_NONE = "none"
TLS_EXTENSION = "tls"
RELOAD_SECONDS = 1.0  # how often the token file is looked at for changes
AUDIT_LOGGER = "openhnv.audit"
SERVER_ERROR = 500

log = logging.getLogger(__name__)


class AuthError(Exception):
    """A credential, token file or certificate that cannot be used; the message says which."""


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: its name, its role (None: a certificate naming no role)
    and how it proved it (``x509``, ``token`` or ``none``)."""

    name: str
    role: str | None
    via: str

    def may(self, method: str) -> bool:
        return self.role == ADMIN or (self.role == READER and method.upper() in READ_METHODS)


ANONYMOUS = Principal("anonymous", ADMIN, VIA_NONE)


def hash_token(token: str) -> str:
    """The SHA-256 (hex) a token file keeps. Tokens are 256 random bits, so a fast hash
    is enough: nothing can be guessed from it."""
    return hashlib.sha256(token.encode()).hexdigest()


def _parse_entries(path: Path, raw: object) -> dict[str, Principal]:
    if not isinstance(raw, dict) or not isinstance(raw.get("tokens"), list):
        raise AuthError(f'{path}: expected {{"tokens": [...]}}')
    found: dict[str, Principal] = {}
    for index, entry in enumerate(raw["tokens"]):
        where = f"{path}: tokens[{index}]"
        if not isinstance(entry, dict):
            raise AuthError(f"{where}: must be an object")
        name, role, digest = entry.get("name"), entry.get("role"), entry.get("sha256")
        if not isinstance(name, str) or not name:
            raise AuthError(f"{where}.name: must be a non-empty string, got {name!r}")
        if role not in ROLES:
            raise AuthError(f"{where}.role: {role!r} is not one of {', '.join(ROLES)}")
        if not isinstance(digest, str) or len(digest) != 64:
            raise AuthError(f"{where}.sha256: must be 64 hex digits, got {digest!r}")
        found[digest.lower()] = Principal(name, str(role), VIA_TOKEN)
    return found


class TokenBook:
    """The token file, read again when it changes (a revoked token stops working within
    ``RELOAD_SECONDS``); an unreadable new version keeps the last good one, logged."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self._clock = clock
        self._lock = threading.Lock()
        self._stamp = self._stat()
        self._principals = self._read()
        self._checked = clock()

    def _stat(self) -> tuple[int, int]:
        try:
            found = os.stat(self.path)
        except OSError as err:
            raise AuthError(f"token file {self.path}: {err.strerror}") from None
        return found.st_mtime_ns, found.st_size

    def _read(self) -> dict[str, Principal]:
        try:
            raw = json.loads(self.path.read_text())
        except (OSError, ValueError) as err:
            raise AuthError(f"token file {self.path}: {err}") from None
        return _parse_entries(self.path, raw)

    def _refresh(self) -> None:
        now = self._clock()
        if now - self._checked < RELOAD_SECONDS:
            return
        with self._lock:
            self._checked = now
            try:
                stamp = self._stat()
                if stamp != self._stamp:
                    self._principals, self._stamp = self._read(), stamp
                    log.warning("token file %s reloaded: %d tokens", self.path, len(self))
            except AuthError as err:
                log.error("%s; keeping the tokens read before", err)

    def __len__(self) -> int:
        return len(self._principals)

    def find(self, token: str) -> Principal | None:
        """The caller a token belongs to, or None."""
        self._refresh()
        return self._principals.get(hash_token(token))


@functools.lru_cache(maxsize=256)
def certificate_principal(pem: str) -> Principal:
    """The caller a (CA-verified) client certificate names: CN, and the role in its OU."""
    cert = x509.load_pem_x509_certificate(pem.encode())
    subject = cert.subject
    names = subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    units = {str(a.value) for a in subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)}
    role = next((r for r in ROLES if r in units), None)
    name = str(names[0].value) if names else subject.rfc4514_string()
    return Principal(name, role, VIA_X509)


def client_certificate(scope: Scope) -> str | None:
    """The PEM of the verified client certificate (ASGI TLS extension), if one was sent."""
    tls = scope.get("extensions", {}).get(TLS_EXTENSION) or {}
    chain = tls.get("client_cert_chain") or []
    return str(chain[0]) if chain else None


@dataclass(frozen=True, slots=True)
class Denial:
    status: int
    code: str
    message: str
    challenge: bool = False  # 401: add WWW-Authenticate
    invalid_token: bool = False


class AuditLog:
    """Every mutating request as one JSON line: to ``path`` (appended, flushed per line)
    and to the ``openhnv.audit`` logger."""

    def __init__(self, path: Path | None, *, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._clock = clock
        self._file: TextIO | None = None
        if path is not None:
            try:
                self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 (kept open)
            except OSError as err:
                raise AuthError(f"--audit-log {path}: {err.strerror}") from None
        self._logger = logging.getLogger(AUDIT_LOGGER)
        self._lock = threading.Lock()

    def record(self, entry: Mapping[str, Any]) -> None:
        stamp = datetime.datetime.fromtimestamp(self._clock(), datetime.UTC)
        line = json.dumps({"time": stamp.isoformat(timespec="milliseconds"), **entry})
        with self._lock:
            if self._file is not None:
                self._file.write(line + "\n")
                self._file.flush()
        self._logger.info("audit %s", line)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class Authenticate:
    """ASGI middleware: authenticate, authorize, audit. ``x509``: client certificates
    are accepted (the TLS layer has verified them); ``tokens``: bearer tokens are."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        x509: bool = False,
        tokens: TokenBook | None = None,
        open_access: bool = False,
        audit: AuditLog | None = None,
    ) -> None:
        self.app = app
        self.x509 = x509
        self.tokens = tokens
        self.open_access = open_access
        self.audit = audit
        schemes = ([f'Bearer realm="{REALM}"'] if tokens is not None else []) + (
            [f'X509 realm="{REALM}"'] if x509 else []
        )
        self.challenge = ", ".join(schemes) or f'Bearer realm="{REALM}"'

    def identify(self, scope: Scope) -> Principal | Denial:
        """Who the request comes from, or why it is refused (401)."""
        header = _header(scope, b"authorization")
        if header is not None:
            scheme, _, credential = header.strip().partition(" ")
            if scheme.lower() != BEARER or self.tokens is None:
                return Denial(401, "Unauthorized", f"{scheme!r} credentials are not accepted here",
                              challenge=True)  # fmt: skip
            found = self.tokens.find(credential.strip())
            if found is None:
                return Denial(401, "Unauthorized", "the bearer token is not valid",
                              challenge=True, invalid_token=True)  # fmt: skip
            return found
        pem = client_certificate(scope) if self.x509 else None
        if pem is not None:
            return certificate_principal(pem)
        if self.open_access:
            return ANONYMOUS
        return Denial(401, "Unauthorized", "credentials are required: a client certificate "
                      "or Authorization: Bearer <token>", challenge=True)  # fmt: skip

    def decide(self, scope: Scope) -> tuple[Principal | None, Denial | None]:
        found = self.identify(scope)
        if isinstance(found, Denial):
            return None, found
        method = str(scope.get("method", "GET"))
        if not found.may(method):
            role = found.role or "no role"
            why = f"{found.name} ({role}) may not {method}"
            return found, Denial(403, "Forbidden", why)
        return found, None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        principal, denial = self.decide(scope)
        audit = self.audit if str(scope.get("method", "")).upper() not in READ_METHODS else None
        recorded = False

        async def sending(message: Message) -> None:
            nonlocal recorded
            if audit is not None and message["type"] == "http.response.start" and not recorded:
                # before the client hears the answer: no acknowledged change goes unaudited
                audit.record(_audit_entry(scope, principal, int(message["status"])))
                recorded = True
            await send(message)

        try:
            if denial is not None:
                await self._refuse(denial, sending)
            else:
                await self.app(scope, receive, sending)
        finally:
            if audit is not None and not recorded:  # the application failed before answering
                audit.record(_audit_entry(scope, principal, SERVER_ERROR))

    async def _refuse(self, denial: Denial, send: Send) -> None:
        error = {"error": {"code": denial.code, "message": denial.message}}
        body = json.dumps(error, separators=(",", ":")).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        if denial.challenge:
            challenge = self.challenge
            if denial.invalid_token:
                challenge = challenge.replace(
                    f'Bearer realm="{REALM}"', f'Bearer realm="{REALM}", error="invalid_token"'
                )
            headers.append((b"www-authenticate", challenge.encode()))
        await send({"type": "http.response.start", "status": denial.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _audit_entry(scope: Scope, principal: Principal | None, status: int) -> dict[str, Any]:
    client = scope.get("client")
    return {
        "who": principal.name if principal else None,
        "via": principal.via if principal else None,
        "role": principal.role if principal else None,
        "method": scope.get("method"),
        "path": scope.get("path"),
        "status": status,
        "client": f"{client[0]}:{client[1]}" if client else None,
    }
