"""Microsoft's IPsec algorithm names as strongSwan proposals; the rest refused by name."""

from __future__ import annotations

import pytest

from openhnv.gateway.errors import GatewayError
from openhnv.gateway.proposals import esp_proposal, ike_proposal


def test_defaults_are_aes256_sha256_and_group14_without_pfs() -> None:
    assert ike_proposal({}) == "aes256-sha256-modp2048"
    assert esp_proposal({}, {}) == "aes256-sha256"


def test_microsoft_names_map_to_strongswan_keywords() -> None:
    main = {
        "encryptionAlgorithm": "AES128",
        "integrityAlgorithm": "SHA1",
        "diffieHellmanGroup": "Group2",
    }
    assert ike_proposal(main) == "aes128-sha1-modp1024"
    quick = {
        "cipherTransformationConstant": "AES192",
        "authenticationTransformationConstant": "MD596",
        "perfectForwardSecrecy": "PFS24",
    }
    assert esp_proposal(quick, main) == "aes192-md5-modp2048s256"
    assert esp_proposal({"perfectForwardSecrecy": "PFSMM"}, main) == "aes256-sha256-modp1024"


@pytest.mark.parametrize(
    ("main", "quick", "named"),
    [
        ({"encryptionAlgorithm": "DES3"}, {}, "DES3"),
        ({"diffieHellmanGroup": "ECP256"}, {}, "ECP256"),
        ({"diffieHellmanGroup": "None"}, {}, "None"),
        ({}, {"cipherTransformationConstant": "GCMAES256"}, "GCMAES256"),
        ({}, {"perfectForwardSecrecy": "ECP384"}, "ECP384"),
    ],
)
def test_what_the_plugins_here_cannot_run_is_refused(
    main: dict[str, str], quick: dict[str, str], named: str
) -> None:
    with pytest.raises(GatewayError, match=f"{named} is not supported"):
        proposals(main, quick)


def proposals(main: dict[str, str], quick: dict[str, str]) -> tuple[str, str]:
    return ike_proposal(main), esp_proposal(quick, main)
