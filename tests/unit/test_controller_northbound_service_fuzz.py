"""Mutated figure 8 bodies: every PUT either succeeds or is an ApiError that changes nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openhnv.controller.errors import ApiError
from openhnv.controller.northbound.service import ControllerService
from openhnv.controller.northbound.store import SqliteStore

FIGURE8 = Path(__file__).resolve().parents[2] / "examples" / "figure8"
REQUESTS = [
    (f"/{f.stem.split('-', 2)[1]}/{f.stem.split('-', 2)[2]}", json.loads(f.read_text()))
    for f in sorted(FIGURE8.glob("*.json"))
]
SERVICE = ControllerService(SqliteStore(":memory:"))
for _path, _body in REQUESTS:
    SERVICE.put(_path, _body)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-5, 70000)
    | st.text(max_size=12)
    | st.sampled_from(
        [
            "10.1.1.11",
            "10.1.1.0/24",
            "*",
            "Internet",
            "5001",
            "True",
            "/servers/host1",
            "001DD8071011",
        ]
    )
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def leaves(doc: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found: list[tuple[Any, ...]] = [at]
    if isinstance(doc, dict):
        for key, value in doc.items():
            found += leaves(value, (*at, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            found += leaves(value, (*at, i))
    return found


def mutate(doc: Any, at: tuple[Any, ...], value: Any) -> Any:
    if not at:
        return value
    copy = json.loads(json.dumps(doc))
    holder = copy
    for step in at[:-1]:
        holder = holder[step]
    holder[at[-1]] = value
    return copy


def refusal(call: Callable[[], object]) -> ApiError | None:
    """The ApiError ``call`` raised, or None when it succeeded."""
    try:
        call()
    except ApiError as err:
        return err
    return None


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_mutated_bodies_succeed_or_are_refused_cleanly(data: st.DataObject) -> None:
    path, body = data.draw(st.sampled_from(REQUESTS))
    at = data.draw(st.sampled_from(leaves(body)))
    mutated = mutate(body, at, data.draw(values))
    before = SERVICE.snapshot()
    try:
        refused = refusal(lambda: SERVICE.put(path, mutated))
        unchanged = SERVICE.snapshot() == before
    finally:
        SERVICE.put(path, body)  # back to figure 8 for the next example (etag may change)
    if refused is not None:
        assert 400 <= refused.status < 500
        assert refused.message
        assert unchanged


def every_path(service: ControllerService) -> list[str]:
    found = []
    for documents in service.snapshot().values():
        for doc in documents:
            stack = [doc]
            while stack:
                item = stack.pop()
                found.append(str(item["resourceRef"]))
                for value in item["properties"].values():
                    if isinstance(value, list):
                        stack += [v for v in value if isinstance(v, dict) and "etag" in v]
    return sorted(found)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_deletes_in_any_order_keep_references_whole(data: st.DataObject) -> None:
    service = ControllerService(SqliteStore(":memory:"))
    for path, body in REQUESTS:
        service.put(path, body)
    for _ in range(6):
        path = data.draw(st.sampled_from(every_path(service)))
        before = service.snapshot()
        refused = refusal(partial(service.delete, path))
        if refused is not None:
            assert refused.status in (404, 409)
            assert service.snapshot() == before
    for documents in service.snapshot().values():  # no reference dangles
        for doc in documents:
            for text in json.dumps(doc).split('"resourceRef": "')[1:]:
                ref = text.split('"', 1)[0]
                service.get(ref)
