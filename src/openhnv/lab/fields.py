"""Reading typed fields out of YAML mappings, with errors that name the key path.

Shared by the topology and edge loaders: each helper takes the mapping, the key and the path of
the mapping (``vms[2]``) and raises ``TopologyError`` naming ``vms[2].ip`` and the value.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

from openhnv.lab.errors import TopologyError

T = TypeVar("T")


class Named(Protocol):
    @property
    def name(self) -> str: ...


N = TypeVar("N", bound=Named)


def by_name(items: tuple[N, ...], name: str) -> N:
    """The item called ``name``; KeyError when there is none."""
    for item in items:
        if item.name == name:
            return item
    raise KeyError(name)


def unique(items: tuple[Any, ...], path: str) -> None:
    seen: set[str] = set()
    for k, item in enumerate(items):
        if item.name in seen:
            raise TopologyError(f"{path}[{k}].name: {item.name!r} is used twice")
        seen.add(item.name)


def no_overlap(prefixes: list[tuple[str, ipaddress.IPv4Network]], path: str) -> None:
    for k, (name, prefix) in enumerate(prefixes):
        for other_name, other in prefixes[:k]:
            if prefix.overlaps(other):
                raise TopologyError(
                    f"{path}[{k}].prefix: {prefix} ({name}) overlaps {other} ({other_name})"
                )


def mapping(raw: object, path: str) -> Mapping[str, Any]:
    if not isinstance(raw, dict):
        where = path or "topology"
        raise TopologyError(f"{where}: expected a mapping, got {type(raw).__name__}")
    return raw


def known(item: Mapping[str, Any], path: str, keys: tuple[str, ...]) -> None:
    for key in item:
        if key not in keys:
            prefix = f"{path}." if path else ""
            raise TopologyError(f"{prefix}{key}: unknown key (expected one of {', '.join(keys)})")


def key_path(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def required(item: Mapping[str, Any], key: str, path: str) -> object:
    if key not in item or item[key] is None:
        raise TopologyError(f"{key_path(path, key)}: missing")
    return item[key]


def listed(
    item: Mapping[str, Any],
    key: str,
    path: str,
    parse_one: Callable[[object, str], T],
    required: bool,
) -> tuple[T, ...]:
    raw = item.get(key)
    if raw is None:
        if required:
            raise TopologyError(f"{key_path(path, key)}: missing")
        return ()
    if not isinstance(raw, list):
        raise TopologyError(f"{key_path(path, key)}: expected a list, got {type(raw).__name__}")
    if required and not raw:
        raise TopologyError(f"{key_path(path, key)}: must not be empty")
    return tuple(parse_one(entry, f"{key_path(path, key)}[{k}]") for k, entry in enumerate(raw))


def string(
    item: Mapping[str, Any],
    key: str,
    path: str,
    pattern: re.Pattern[str] | None = None,
    hint: str = "letters, digits, '_', '.', '-', at most 32",
) -> str:
    value = required(item, key, path)
    if not isinstance(value, str):
        raise TopologyError(f"{key_path(path, key)}: expected a string, got {value!r}")
    if pattern is not None and not pattern.fullmatch(value):
        raise TopologyError(f"{key_path(path, key)}: {value!r} is not a valid name ({hint})")
    return value


def choice(
    item: Mapping[str, Any],
    key: str,
    path: str,
    choices: tuple[str, ...],
    default: str | None = None,
) -> str:
    if default is not None and item.get(key) is None:
        return default
    value = required(item, key, path)
    for choice in choices:
        if isinstance(value, str) and value.lower() == choice.lower():
            return choice
    raise TopologyError(f"{key_path(path, key)}: {value!r} is not one of {', '.join(choices)}")


def integer(
    item: Mapping[str, Any],
    key: str,
    path: str,
    low: int,
    high: int,
    default: Any = ...,
) -> Any:
    if default is not ... and item.get(key) is None:
        return default
    value = required(item, key, path)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TopologyError(f"{key_path(path, key)}: {value!r} is not an integer")
    if not low <= value <= high:
        raise TopologyError(f"{key_path(path, key)}: {value} is not in {low}..{high}")
    return value


def address(item: Mapping[str, Any], key: str, path: str) -> ipaddress.IPv4Address:
    value = required(item, key, path)
    try:
        return ipaddress.IPv4Address(str(value))
    except ValueError:
        raise TopologyError(f"{key_path(path, key)}: {value} is not an IPv4 address") from None


def address6(item: Mapping[str, Any], key: str, path: str) -> ipaddress.IPv6Address:
    value = required(item, key, path)
    try:
        return ipaddress.IPv6Address(str(value))
    except ValueError:
        raise TopologyError(f"{key_path(path, key)}: {value} is not an IPv6 address") from None


def network6(item: Mapping[str, Any], key: str, path: str) -> ipaddress.IPv6Network:
    text = str(required(item, key, path))
    where = key_path(path, key)
    if "/" not in text:
        raise TopologyError(f"{where}: {text} is not an IPv6 prefix (CIDR such as fd00:1::/64)")
    try:
        return ipaddress.IPv6Network(text)
    except ValueError as exc:
        raise TopologyError(f"{where}: {text} is not an IPv6 prefix ({exc})") from None


def network(item: Mapping[str, Any], key: str, path: str) -> ipaddress.IPv4Network:
    return parse_network(required(item, key, path), key_path(path, key))


def parse_network(value: object, where: str) -> ipaddress.IPv4Network:
    text = str(value)
    if "/" not in text:
        raise TopologyError(f"{where}: {text} is not an IPv4 prefix (CIDR such as 10.0.0.0/24)")
    try:
        return ipaddress.IPv4Network(text)
    except ValueError as exc:
        raise TopologyError(f"{where}: {text} is not an IPv4 prefix ({exc})") from None
