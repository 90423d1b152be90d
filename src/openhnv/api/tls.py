"""TLS for the REST listener: uvicorn's SSL options, and the client certificate in scope.

Client certificates are optional at the TLS layer (``CERT_OPTIONAL``: a script with a
bearer token needs none), but one that is sent must chain to the client CA, or the
handshake fails and the client gets no connection at all. uvicorn does not put the
peer's certificate into the ASGI scope, so ``ClientCertProtocol`` (its h11 protocol,
one instance per connection) adds it as the ASGI TLS extension,
``scope["extensions"]["tls"]["client_cert_chain"]`` (PEM), which ``openhnv.api.auth``
reads.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from openhnv.api.auth import TLS_EXTENSION, AuthError


@dataclass(frozen=True, slots=True)
class ListenerTls:
    """The REST listener's certificate and key, and the CA its clients' certificates
    must chain to (None: no client certificates, tokens only)."""

    certificate: Path
    private_key: Path
    client_ca: Path | None = None

    def check(self) -> None:
        """AuthError naming the flag and the file that cannot be used."""
        files = [("--tls-cert", self.certificate), ("--tls-key", self.private_key)]
        if self.client_ca is not None:
            files.append(("--client-ca", self.client_ca))
        for flag, path in files:
            if not path.is_file():
                raise AuthError(f"{flag} {path}: no such file")
        try:
            self.context()
        except (ssl.SSLError, OSError) as err:
            raise AuthError(f"--tls-cert/--tls-key/--client-ca: cannot be used: {err}") from None

    def context(self) -> ssl.SSLContext:
        """The server context (as uvicorn builds it from ``uvicorn_options``)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.certificate, self.private_key)
        if self.client_ca is not None:
            context.verify_mode = ssl.CERT_OPTIONAL
            context.load_verify_locations(self.client_ca)
        return context

    def uvicorn_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "ssl_certfile": str(self.certificate),
            "ssl_keyfile": str(self.private_key),
            "http": ClientCertProtocol,
        }
        if self.client_ca is not None:
            options["ssl_ca_certs"] = str(self.client_ca)
            options["ssl_cert_reqs"] = ssl.CERT_OPTIONAL
        return options


def peer_extension(transport: asyncio.BaseTransport) -> dict[str, Any]:
    """The ASGI TLS extension of a connection: the client's certificate, if any."""
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return {}
    der = ssl_object.getpeercert(binary_form=True)
    chain = [ssl.DER_cert_to_PEM_cert(der)] if der else []
    return {
        TLS_EXTENSION: {
            "client_cert_chain": chain,
            "client_cert_error": None,
            "tls_version": None,
            "cipher_suite": None,
        }
    }


class ClientCertProtocol(H11Protocol):
    """uvicorn's h11 protocol, with the connection's client certificate in every scope.

    asyncio calls ``connection_made`` once the TLS handshake is done, so the certificate
    is read once per connection."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        extension = peer_extension(transport)
        if not extension:
            return
        inner = self.app

        async def with_certificate(scope: Scope, receive: Receive, send: Send) -> None:
            extensions = {**scope.get("extensions", {}), **extension}
            await inner({**scope, "extensions": extensions}, receive, send)

        self.app = with_certificate
