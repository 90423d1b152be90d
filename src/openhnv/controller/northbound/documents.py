"""Plain helpers on stored northbound documents: deep copies and inline children.

A stored document is ``{"resourceId", "instanceId", "etag", "tags"?,
"resourceMetadata"?, "properties"}``; child resources sit inline in their parent's
``properties`` as ``{"resourceId", "instanceId", "tags"?, "resourceMetadata"?,
"properties"}``.
"""

from __future__ import annotations

import json

from openhnv.controller.northbound.store import Document

# Free-form objects of the envelope, stored and returned as sent (NC-REFERENCE.md 1.2)
ENVELOPE_OBJECTS = ("tags", "resourceMetadata")


def copy_document(doc: Document) -> Document:
    """A deep copy of a JSON document."""
    copied: Document = json.loads(json.dumps(doc))
    return copied


def children(doc: Document, collection: str) -> list[Document]:
    """The inline child documents of ``doc`` in ``collection`` (a live list)."""
    found = doc.get("properties", {}).get(collection)
    return found if isinstance(found, list) else []


def find_child(doc: Document, collection: str, resource_id: str) -> Document | None:
    folded = resource_id.casefold()
    for child in children(doc, collection):
        if str(child.get("resourceId", "")).casefold() == folded:
            return child
    return None
