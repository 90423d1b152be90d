"""The credentials of a loopback controller: its API PKI, made once, used by every client.

``ApiAccess.create(directory)`` runs what an operator would (``hnv pki init``, an
``api-server`` certificate for ``localhost``/127.0.0.1, an ``admin`` client certificate,
an admin and a reader token) and keeps the tokens in ``directory`` (mode 0600), so the
lab's commands (``hnv lab status`` ...) find them again. ``controller_args()`` are the
``hnv controller`` options that make the listener TLS-only with client certificates and
tokens; ``ssl_context()`` is what a client trusts and presents.
"""

from __future__ import annotations

import json
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from openhnv.api import pki

SERVER_NAME = "localhost"
ADMIN_NAME = "lab-admin"
SECRETS_FILE = "lab-tokens.json"  # the tokens themselves, for the lab's own use


@dataclass(frozen=True, slots=True)
class ApiAccess:
    """A controller's API credentials in ``directory`` (an ``hnv pki`` directory)."""

    directory: Path
    admin_token: str
    reader_token: str

    @property
    def ca(self) -> Path:
        return pki.api_ca_cert(self.directory)

    @property
    def server_cert(self) -> Path:
        return self.directory / f"{SERVER_NAME}-cert.pem"

    @property
    def server_key(self) -> Path:
        return self.directory / f"{SERVER_NAME}-key.pem"

    @property
    def admin_cert(self) -> Path:
        return self.directory / f"{ADMIN_NAME}-cert.pem"

    @property
    def admin_key(self) -> Path:
        return self.directory / f"{ADMIN_NAME}-key.pem"

    @property
    def tokens(self) -> Path:
        return self.directory / pki.TOKENS_FILE

    @classmethod
    def create(cls, directory: Path) -> ApiAccess:
        """Make the CA, the listener's and the admin's certificates and two tokens."""
        directory.mkdir(parents=True, exist_ok=True)
        pki.init_api_ca(directory, force=True)
        pki.issue_api(directory, SERVER_NAME, pki.API_SERVER)
        pki.issue_api(directory, ADMIN_NAME, "admin")
        tokens = directory / pki.TOKENS_FILE
        tokens.unlink(missing_ok=True)
        admin = pki.new_token(tokens, "lab-admin", "admin")
        reader = pki.new_token(tokens, "lab-reader", "reader")
        secrets = json.dumps({"admin": admin, "reader": reader}).encode()
        fd = os.open(directory / SECRETS_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(secrets)
        return cls(directory, admin, reader)

    @classmethod
    def load(cls, directory: Path) -> ApiAccess | None:
        """The credentials ``create`` left in ``directory``, or None."""
        try:
            found = json.loads((directory / SECRETS_FILE).read_text())
            return cls(directory, str(found["admin"]), str(found["reader"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def controller_args(self) -> list[str]:
        """``hnv controller`` options: HTTPS, client certificates and tokens required."""
        return [
            "--tls-cert", str(self.server_cert),
            "--tls-key", str(self.server_key),
            "--client-ca", str(self.ca),
            "--tokens", str(self.tokens),
        ]  # fmt: skip

    def ssl_context(self, *, certificate: bool = True) -> ssl.SSLContext:
        """Trust the API CA; present the admin certificate unless ``certificate`` is False
        (a token's client)."""
        context = ssl.create_default_context(cafile=str(self.ca))
        if certificate:
            context.load_cert_chain(self.admin_cert, self.admin_key)
        return context
