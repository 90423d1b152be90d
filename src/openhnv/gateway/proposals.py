"""Microsoft's IPsec settings as strongSwan proposals (pure tables, no I/O).

A networkConnection's ``ipSecConfiguration`` names algorithms the way Microsoft's
Network Controller does (``mainMode.encryptionAlgorithm: AES256``, ``quickMode.
perfectForwardSecrecy: PFS2048`` ...). The gateway's strongSwan (``kernel-libipsec``,
with the plugins Debian's ``libcharon-extra-plugins`` and ``strongswan-charon`` ship:
aes, sha1, sha2, md5, hmac, gmp) runs what maps here; anything else is refused by name
before it reaches a host (DES and 3DES, GCM, elliptic-curve groups, no DH in IKE).
"""

from __future__ import annotations

from collections.abc import Mapping

from openhnv.gateway.errors import GatewayError

ENCRYPTION: Mapping[str, str] = {"AES128": "aes128", "AES192": "aes192", "AES256": "aes256"}
INTEGRITY: Mapping[str, str] = {
    "MD5": "md5", "SHA1": "sha1", "SHA256": "sha256", "SHA384": "sha384",
}  # fmt: skip
DH_GROUPS: Mapping[str, str] = {
    "Group1": "modp768", "Group2": "modp1024", "Group14": "modp2048", "Group24": "modp2048s256",
}  # fmt: skip
CIPHERS: Mapping[str, str] = ENCRYPTION
AUTH_TRANSFORMS: Mapping[str, str] = {"MD596": "md5", "SHA196": "sha1", "SHA256128": "sha256"}
PFS_GROUPS: Mapping[str, str] = {
    "PFS1": "modp768", "PFS2": "modp1024", "PFS2048": "modp2048", "PFS24": "modp2048s256",
}  # fmt: skip
NO_PFS = "None"
PFS_MAIN_MODE = "PFSMM"  # the main mode's group

DEFAULT_MAIN_MODE: Mapping[str, str] = {
    "encryptionAlgorithm": "AES256",
    "integrityAlgorithm": "SHA256",
    "diffieHellmanGroup": "Group14",
}
DEFAULT_QUICK_MODE: Mapping[str, str] = {
    "cipherTransformationConstant": "AES256",
    "authenticationTransformationConstant": "SHA256128",
    "perfectForwardSecrecy": NO_PFS,
}


def _pick(table: Mapping[str, str], value: str, field: str) -> str:
    found = table.get(value)
    if found is None:
        supported = ", ".join(table)
        raise GatewayError(f"{field}: {value} is not supported here (supported: {supported})")
    return found


def ike_proposal(main_mode: Mapping[str, str]) -> str:
    """The IKE proposal of a ``mainMode``, e.g. ``aes256-sha256-modp2048``."""
    mode = {**DEFAULT_MAIN_MODE, **main_mode}
    return "-".join(
        (
            _pick(ENCRYPTION, mode["encryptionAlgorithm"], "mainMode.encryptionAlgorithm"),
            _pick(INTEGRITY, mode["integrityAlgorithm"], "mainMode.integrityAlgorithm"),
            _pick(DH_GROUPS, mode["diffieHellmanGroup"], "mainMode.diffieHellmanGroup"),
        )
    )


def esp_proposal(quick_mode: Mapping[str, str], main_mode: Mapping[str, str]) -> str:
    """The ESP proposal of a ``quickMode``, e.g. ``aes256-sha256`` (``-modp2048`` with PFS)."""
    mode = {**DEFAULT_QUICK_MODE, **quick_mode}
    parts = [
        _pick(CIPHERS, mode["cipherTransformationConstant"],
              "quickMode.cipherTransformationConstant"),
        _pick(AUTH_TRANSFORMS, mode["authenticationTransformationConstant"],
              "quickMode.authenticationTransformationConstant"),
    ]  # fmt: skip
    pfs = mode["perfectForwardSecrecy"]
    if pfs == PFS_MAIN_MODE:
        main = {**DEFAULT_MAIN_MODE, **main_mode}
        parts.append(_pick(DH_GROUPS, main["diffieHellmanGroup"], "mainMode.diffieHellmanGroup"))
    elif pfs != NO_PFS:
        parts.append(_pick(PFS_GROUPS, pfs, "quickMode.perfectForwardSecrecy"))
    return "-".join(parts)
