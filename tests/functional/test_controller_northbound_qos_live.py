"""``portSettings.qosSettings`` over HTTP on a real ``hnv controller``: accepted caps round
trip, bad ones are 400s naming the field and change nothing, reservations are refused."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from openhnv.controller.northbound.model_base import MBPS_MAX
from openhnv.testing.processes import ControllerProcess
from openhnv.vfp.qos import MAX_MBPS

ROOT = Path(__file__).resolve().parents[2]
FIGURE8 = ROOT / "examples" / "figure8"
NIC_FILE = FIGURE8 / "08-networkInterfaces-Contoso-SQL.json"


@pytest.fixture
def base(controller_process: ControllerProcess) -> str:
    for file in sorted(FIGURE8.glob("*.json")):
        _, collection, resource_id = file.stem.split("-", 2)
        response = httpx.put(f"{controller_process.base}/{collection}/{resource_id}",
                             content=file.read_bytes())  # fmt: skip
        assert response.status_code == 201, response.text
    return controller_process.base


def nic_with(qos: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(NIC_FILE.read_text())
    body["properties"]["portSettings"]["qosSettings"] = qos
    return body


def test_the_controller_and_the_host_agree_on_the_largest_cap() -> None:
    assert MBPS_MAX == MAX_MBPS


def test_caps_round_trip_with_ncs_names_and_types(base: str) -> None:
    url = f"{base}/networkInterfaces/Contoso-SQL"
    sent = {"outboundMaximumMbps": "50", "inboundMaximumMbps": 100,
            "outboundReservedValue": "40", "enableHardwareLimits": "False"}  # fmt: skip
    response = httpx.put(url, json=nic_with(sent))
    assert response.status_code == 200, response.text
    got = httpx.get(url).json()["properties"]["portSettings"]["qosSettings"]
    assert got == {"outboundMaximumMbps": 50, "inboundMaximumMbps": 100,
                   "outboundReservedValue": 40, "enableHardwareLimits": False}  # fmt: skip
    again = httpx.put(url, json=nic_with({"outboundMaximumMbps": 0}))  # 0: no cap
    assert again.status_code == 200, again.text
    lifted = httpx.get(url).json()["properties"]["portSettings"]["qosSettings"]
    assert (lifted["outboundMaximumMbps"], lifted["inboundMaximumMbps"]) == (0, 0)


@pytest.mark.parametrize(
    ("qos", "field", "code"),
    [
        ({"outboundMaximumMbps": -1}, "outboundMaximumMbps", "InvalidInput"),
        ({"inboundMaximumMbps": "fast"}, "inboundMaximumMbps", "InvalidInput"),
        ({"inboundMaximumMbps": MAX_MBPS + 1}, "inboundMaximumMbps", "InvalidInput"),
        ({"outboundMaximumMbps": 1.5}, "outboundMaximumMbps", "InvalidInput"),
        ({"enableHardwareLimits": "maybe"}, "enableHardwareLimits", "InvalidInput"),
        ({"outboundReservedValue": -1}, "outboundReservedValue", "InvalidInput"),
        ({"outboundReservedValue": MAX_MBPS + 1}, "outboundReservedValue", "InvalidInput"),
        (
            {"outboundMaximumMbps": 50, "outboundReservedValue": 60},
            "outboundReservedValue",
            "InvalidInput",
        ),
        ({"enableHardwareLimits": True}, "enableHardwareLimits", "NotSupported"),
    ],
)
def test_bad_settings_are_400s_naming_the_field_and_change_nothing(
    base: str, qos: dict[str, Any], field: str, code: str
) -> None:
    url = f"{base}/networkInterfaces/Contoso-SQL"
    before = httpx.get(url).json()
    response = httpx.put(url, json=nic_with(copy.deepcopy(qos)))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert field in error["message"]
    assert "qosSettings" in error["message"]
    assert httpx.get(url).json() == before
