"""A compartment's strongSwan configuration: charon's ``strongswan.conf`` and the
``swanctl.conf`` of its site-to-site connections (pure text, no I/O).

The kernel has no ESP, so charon runs ``kernel-libipsec``: ESP in userspace over a TUN
device (``ipsec0``), always in UDP (4500), with routes to the remote prefixes in table
220. Each IPSec connection is one IKEv2 connection from the compartment's public
address to the peer, one child SA between the VNet's address space and the remote
prefixes (the connection's routes), started by the compartment and restarted when dead
peer detection finds the peer gone. The algorithms come from the connection's
``mainMode``/``quickMode`` (``openhnv.gateway.proposals``). Authentication is a
pre-shared key or certificates (RSA: the plugins here have no elliptic curves); each
certificate connection has files of its own, named after it (``x509/<name>.pem``,
``private/<name>.pem``, ``x509ca/<name>-ca.pem``), so connections of one compartment
never share a certificate or trust each other's authority.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from openhnv.gateway.proposals import esp_proposal, ike_proposal
from openhnv.gateway.rows import ConnectionSpec

PLUGINS = (
    "random nonce aes sha1 sha2 md5 hmac gmp kdf pem pkcs1 pkcs8 x509 pubkey constraints "
    "revocation kernel-libipsec kernel-netlink socket-default vici updown"
)
SWANCTL_PLUGINS = "pem pkcs1 pkcs8 x509 pubkey constraints revocation random"
DPD_DELAY_SECONDS = 5
CERTIFICATES = "Certificates"
CREDENTIAL_DIRECTORIES = ("x509", "private", "x509ca")
PEM_KEY_MARKER = "-----BEGIN"
SAFE_FILE_NAME = re.compile(r"[A-Za-z0-9_.-]+")
NAME_DIGEST_CHARS = 8
# How charon sees its files: the compartment's ipsec directory bound on /mnt and its run
# directory on /run, in charon's own mount namespace (``daemons.start_charon``).
INSIDE_RUN_DIR = Path("/run")
INSIDE_LOG = Path("/mnt/charon.log")


@dataclass(frozen=True, slots=True)
class IpsecFiles:
    """Everything charon and swanctl read, relative to the compartment's ipsec directory."""

    strongswan_conf: str
    swanctl_conf: str
    credentials: Mapping[str, str] = field(default_factory=dict)  # "x509/local.pem" -> PEM


def strongswan_conf(run_dir: Path, log_file: Path) -> str:
    """charon's settings: our plugins only, the vici socket in the private run dir."""
    return f"""charon {{
  load = {PLUGINS}
  install_routes = yes
  filelog {{
    charon {{
      path = {log_file}
      default = 1
      ike = 1
      ike_name = yes
      flush_line = yes
      append = yes
    }}
  }}
  plugins {{
    vici {{
      socket = unix://{run_dir}/charon.vici
    }}
  }}
}}
swanctl {{
  load = {SWANCTL_PLUGINS}
}}
"""


def file_stem(connection: str) -> str:
    """The stem of a connection's credential files: its name when that is a safe file
    name, else a safe form of it with a digest of the name (distinct names stay apart)."""
    if SAFE_FILE_NAME.fullmatch(connection) and not connection.startswith("."):
        return connection
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", connection).lstrip(".")
    digest = hashlib.sha256(connection.encode()).hexdigest()[:NAME_DIGEST_CHARS]
    return f"{safe}-{digest}"


def certificate_files(connection: str) -> tuple[str, str, str]:
    """(certificate, key, peer authority) file names of a connection, each relative to
    its swanctl directory (``x509``, ``private``, ``x509ca``)."""
    stem = file_stem(connection)
    return f"{stem}.pem", f"{stem}.pem", f"{stem}-ca.pem"


def split_pem(text: str) -> tuple[str, str]:
    """(certificate, private key) from one PEM text holding both, in any order."""
    cert: list[str] = []
    key: list[str] = []
    target = cert
    for line in text.strip().splitlines():
        if line.startswith(PEM_KEY_MARKER):
            target = key if "PRIVATE KEY" in line else cert
        target.append(line)
    return "\n".join(cert) + "\n", "\n".join(key) + "\n"


def _lifetime(options: Mapping[str, str], name: str, default: int) -> int:
    text = options.get(name, "")
    return int(text) if text.isdigit() else default


def _modes(options: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    main = {k.split(".", 1)[1]: v for k, v in options.items() if k.startswith("mainMode.")}
    quick = {k.split(".", 1)[1]: v for k, v in options.items() if k.startswith("quickMode.")}
    return main, quick


def connection_conf(
    spec: ConnectionSpec, local_ts: Sequence[str], *, responder: bool = False
) -> tuple[str, str]:
    """(the connection's ``connections`` entry, its ``secrets`` entry) of swanctl.conf;
    a ``responder`` waits for the peer (a remote site) instead of starting the tunnel."""
    name = spec.short_name
    local = str(spec.addresses[0].ip)
    remote = str(spec.peers[0])
    remote_id = spec.options.get("peerId") or remote
    main, quick = _modes(spec.options)
    certificates = spec.options.get("authenticationMethod") == CERTIFICATES
    if certificates:
        cert_file, _, ca_file = certificate_files(name)
        local_auth = f"auth = pubkey\n        certs = {cert_file}\n        id = {local}"
        remote_auth = f"auth = pubkey\n        id = {remote_id}\n        cacerts = {ca_file}"
        secrets = ""
    else:
        local_auth = f"auth = psk\n        id = {local}"
        remote_auth = f"auth = psk\n        id = {remote_id}"
        secret = spec.options.get("sharedSecret", "").replace("\\", "\\\\").replace('"', '\\"')
        secrets = (
            f"  ike-{name} {{\n    id-1 = {local}\n    id-2 = {remote_id}\n"
            f'    secret = "{secret}"\n  }}\n'
        )
    remote_ts = ",".join(str(r) for r in spec.routes)
    conf = f"""  {name} {{
    version = 2
    local_addrs = {local}
    remote_addrs = {remote}
    proposals = {ike_proposal(main)}
    rekey_time = {_lifetime(main, "saLifeTimeSeconds", 28800)}s
    dpd_delay = {DPD_DELAY_SECONDS}s
    encap = yes
    local {{
        {local_auth}
    }}
    remote {{
        {remote_auth}
    }}
    children {{
      {name} {{
        local_ts = {",".join(local_ts)}
        remote_ts = {remote_ts}
        esp_proposals = {esp_proposal(quick, main)}
        rekey_time = {_lifetime(quick, "saLifeTimeSeconds", 3600)}s
        start_action = {"none" if responder else "start"}
        dpd_action = {"clear" if responder else "restart"}
        close_action = {"none" if responder else "start"}
      }}
    }}
  }}
"""
    return conf, secrets


def ipsec_files(
    connections: Sequence[ConnectionSpec],
    local_ts: Sequence[str],
    run_dir: Path = INSIDE_RUN_DIR,
    log_file: Path = INSIDE_LOG,
    *,
    responder: bool = False,
) -> IpsecFiles | None:
    """charon's files for a compartment's IPSec connections (None: it has none)."""
    if not connections:
        return None
    entries: list[str] = []
    secrets: list[str] = []
    credentials: dict[str, str] = {}
    for spec in connections:
        conf, secret = connection_conf(spec, local_ts, responder=responder)
        entries.append(conf)
        if secret:
            secrets.append(secret)
        if spec.options.get("authenticationMethod") == CERTIFICATES:
            cert, key = split_pem(spec.options.get("localCertificate", ""))
            cert_file, key_file, ca_file = certificate_files(spec.short_name)
            credentials[f"x509/{cert_file}"] = cert
            credentials[f"private/{key_file}"] = key
            credentials[f"x509ca/{ca_file}"] = spec.options.get("peerCertificateAuthority", "")
    swanctl = "connections {\n" + "".join(entries) + "}\n"
    swanctl += "secrets {\n" + "".join(secrets) + "}\n"
    return IpsecFiles(strongswan_conf(run_dir, log_file), swanctl, credentials)
