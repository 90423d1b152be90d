"""Plain-text tables and key/value blocks for the inspection commands (``hnv vfp``, ``hnv host``).

Pure functions of JSON-ready data: ``render_table(rows, columns)`` aligns a list of dicts
under headers, ``render_fields(mapping)`` prints one ``name : value`` line per key (the
``vfpctrl`` / ``Get-ProviderAddress`` list style).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

Column = tuple[str, str]  # (key in the row, header)
EMPTY = "-"
MAX_CELL = 80


def cell(value: Any) -> str:
    """One value as table text: ``-`` for None/empty, lists comma-joined, bools yes/no."""
    if value is None or value == "" or value == [] or value == {}:
        return EMPTY
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple, set, frozenset)):
        return ",".join(cell(v) for v in value)
    if isinstance(value, dict):
        return ",".join(f"{k}={cell(v)}" for k, v in value.items())
    text = str(value)
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 3] + "..."


def render_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column]) -> str:
    """``rows`` under ``columns``, left-aligned, two spaces apart; a note when empty."""
    if not rows:
        return "(none)"
    headers = [header for _, header in columns]
    body = [[cell(row.get(key)) for key, _ in columns] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in body)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in body]
    return "\n".join(lines)


def _nested(value: Any) -> bool:
    return isinstance(value, dict) and bool(value)


def render_fields(values: Mapping[str, Any], labels: Mapping[str, str] | None = None) -> str:
    """One ``label : value`` line per key; nested dicts are indented under their key."""
    labels = labels or {}
    names = [labels.get(k, k) for k in values]
    flat = [n for n, v in zip(names, values.values(), strict=True) if not _nested(v)]
    width = max((len(n) for n in flat), default=0)
    lines: list[str] = []
    for value, name in zip(values.values(), names, strict=True):
        if _nested(value):
            lines.append(f"{name}:")
            lines += ["  " + line for line in render_fields(value).splitlines()]
        else:
            lines.append(f"{name.ljust(width)} : {cell(value)}")
    return "\n".join(lines)


def render_records(rows: Sequence[Mapping[str, Any]], labels: Mapping[str, str]) -> str:
    """Each row as a block of ``label : value`` lines, blocks separated by a blank line."""
    if not rows:
        return "(none)"
    return "\n\n".join(render_fields({labels[k]: row.get(k) for k in labels}) for row in rows)


def render_json(value: Any) -> str:
    """``--json`` output: indented, keys in their order."""
    return json.dumps(value, indent=2, default=str)
