"""``hnv controller`` over HTTP: bad bodies for the gateway resources are 4xx answers
naming the field and the value, and leave nothing behind."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from openhnv.testing.processes import ControllerProcess

BAD_BODIES: list[tuple[str, Any, int, tuple[str, ...]]] = [
    ("/gatewayPools/default", "{not json", 400, ("JSON",)),
    ("/gatewayPools/default", {"properties": {"type": "Teleport"}}, 400, ("type", "Teleport")),
    (
        "/publicIPAddresses/pip",
        {"properties": {"publicIPAllocationMethod": "Static", "ipAddress": "203.0.113.300"}},
        400,
        ("ipAddress", "203.0.113.300"),
    ),
    (
        "/gateways/gw1",
        {"properties": {"pool": {"resourceRef": "/gatewayPools/nowhere"}}},
        400,
        ("properties.server", "required"),
    ),
    (
        "/virtualGateways/vg",
        {
            "properties": {
                "networkConnections": [
                    {"resourceId": "g", "properties": {"connectionType": "GRE"}},
                ]
            }
        },
        400,
        ("properties.gatewaySubnets", "required"),
    ),
]


@pytest.mark.parametrize(("path", "body", "status", "words"), BAD_BODIES)
def test_a_bad_gateway_body_is_refused_by_name(
    controller_process: ControllerProcess,
    path: str,
    body: Any,
    status: int,
    words: tuple[str, ...],
) -> None:
    url = controller_process.base + path
    sent = body if isinstance(body, str) else httpx.Request("PUT", url, json=body).content
    response = httpx.put(url, content=sent, headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    for word in words:
        assert word in response.text, response.text
    assert httpx.get(url).status_code == httpx.codes.NOT_FOUND
