"""kumo's exception tree. Domain code raises these; the HTTP layer maps them once
(kumo/api/errors.py) to each service's OpenStack error body."""

from __future__ import annotations


class KumoError(Exception):
    status = 500
    kind = "computeFault"  # Nova's key for the error body
    title = "Internal Server Error"

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.title)
        self.message = message or self.title


class BadRequest(KumoError):
    status, kind, title = 400, "badRequest", "Bad Request"


class Unauthorized(KumoError):
    status, kind, title = 401, "unauthorized", "Unauthorized"


class Forbidden(KumoError):
    status, kind, title = 403, "forbidden", "Forbidden"


class NotFound(KumoError):
    status, kind, title = 404, "itemNotFound", "Not Found"


class Conflict(KumoError):
    status, kind, title = 409, "conflictingRequest", "Conflict"


class OverLimit(KumoError):
    status, kind, title = 403, "forbidden", "Quota exceeded"


class NotAcceptable(KumoError):
    status, kind, title = 406, "notAcceptable", "Not Acceptable"


class RequestEntityTooLarge(KumoError):
    status, kind, title = 413, "overLimit", "Request Entity Too Large"


class UnsupportedMediaType(KumoError):
    status, kind, title = 415, "badMediaType", "Unsupported Media Type"


class NotImplementedYet(KumoError):
    status, kind, title = 501, "notImplemented", "Not Implemented"


class InvalidState(Conflict):
    """An action that the instance's current vm_state/task_state does not allow."""


class NoValidHost(KumoError):
    status, kind, title = 500, "computeFault", "No valid host was found"


class ClaimConflict(Exception):
    """A resource provider's generation moved under us; the caller re-reads and retries."""
