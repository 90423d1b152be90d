"""The controller layer's errors: one base, ``ControllerError``, and the cases callers
tell apart (a rejected request, a store failure, a document the compiler cannot read, a
request the compiler cannot answer, a management address that names no OVSDB remote).

``ApiError`` carries the HTTP status the REST edge answers with, a Microsoft-style error
code and a message that names the field and the value, e.g.
``properties.ipConfigurations[0].properties.privateIPAddress: 10.1.1.0 is the network
address of subnet 10.1.1.0/24``. The controller raises it; the REST layer renders it as
``{"error": {"code": ..., "message": ...}}``.
"""

from __future__ import annotations

BAD_REQUEST = 400
NOT_FOUND = 404
CONFLICT = 409
PRECONDITION_FAILED = 412


class ControllerError(Exception):
    """Anything the controller refuses or cannot do; the message names what is wrong."""


class ApiError(ControllerError):
    """A request the controller refuses; nothing was changed."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"ApiError({self.status}, {self.code!r}, {self.message!r})"

    def as_body(self) -> dict[str, dict[str, str]]:
        """The Microsoft-style error body."""
        return {"error": {"code": self.code, "message": self.message}}


def bad_request(field: str, reason: str, code: str = "InvalidInput") -> ApiError:
    """400: the request body is wrong at ``field``."""
    return ApiError(BAD_REQUEST, code, f"{field}: {reason}" if field else reason)


def not_found(ref: str) -> ApiError:
    """404: no resource at ``ref``."""
    return ApiError(NOT_FOUND, "ResourceNotFound", f"{ref} does not exist")


def conflict(field: str, reason: str, code: str = "Conflict") -> ApiError:
    """409: the request clashes with another resource."""
    return ApiError(CONFLICT, code, f"{field}: {reason}" if field else reason)


def precondition_failed(ref: str, expected: str, actual: str) -> ApiError:
    """412: ``If-Match`` names an etag that is no longer current."""
    return ApiError(
        PRECONDITION_FAILED,
        "PreconditionFailed",
        f"If-Match {expected} does not match the current etag {actual} of {ref}",
    )


class StoreError(ControllerError):
    """The store cannot be opened or written."""


class CompileError(ControllerError, ValueError):
    """A request the compiler cannot answer (bad data never raises: it is a problem)."""


class DocumentError(ControllerError):
    """A northbound document cannot be used; the message says which field and why."""
