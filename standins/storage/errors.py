"""Supabase Storage's error model: a logical status, an error name, a code and a message.

Storage renders every error as `{"statusCode": "<logical>", "error", "message", "code"}` and, for the object
routes, answers HTTP 400 for anything that is not a 500 (a legacy decision it keeps). Clients, storage3
included, read the logical status from the body, so the stand-in must do the same or the one client code path
would behave differently in embedded mode.
"""

from __future__ import annotations

from typing import Any

import psycopg

# An invalid key is echoed in the error's message; a key kilobytes long is not.
_ECHOED_KEY_CHARS = 200


class StorageError(Exception):
    """An error with Supabase Storage's envelope."""

    def __init__(
        self, status: int, code: str, message: str, error: str | None = None, *, http_status: int | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        # Storage falls back to the code when an error has no separate name.
        self.error = error or code
        self._http_status = http_status

    @property
    def http_status(self) -> int:
        """The HTTP status Storage sends: 500 stays 500, a 503 stays 503 (retryable), all else is 400,
        unless the error sets its own (an unknown route's 404)."""
        if self._http_status is not None:
            return self._http_status
        return self.status if self.status in (500, 503) else 400

    def body(self) -> dict[str, Any]:
        """The JSON envelope."""
        return {"statusCode": str(self.status), "error": self.error, "message": self.message, "code": self.code}


def no_such_key() -> StorageError:
    """The object does not exist, or the caller may not see it (the two are never told apart)."""
    return StorageError(404, "NoSuchKey", "Object not found", "not_found")


def no_such_bucket() -> StorageError:
    """The bucket does not exist."""
    return StorageError(404, "NoSuchBucket", "Bucket not found", "Bucket not found")


def route_not_found(method: str, url: str) -> StorageError:
    """No route has this method and path. Storage's not-found handler (src/http/not-found-handler.ts) sends
    a real 404, and Fastify has no 405: a known path with another method is not found either. `url` is the
    path and query under `/storage/v1`, as Storage sees it behind the gateway that strips that prefix."""
    return StorageError(404, "InvalidRequest", f"Route {method}:{url} not found", "Not Found", http_status=404)


def already_exists() -> StorageError:
    """An object already sits at that key and the upload did not ask to replace it."""
    return StorageError(409, "KeyAlreadyExists", "The resource already exists", "Duplicate")


def resource_already_exists() -> StorageError:
    """A row already sits where a move would put the object (Storage's unique violation, 23505)."""
    return StorageError(409, "ResourceAlreadyExists", "The resource already exists", "Duplicate")


def entity_too_large() -> StorageError:
    """The upload is larger than the bucket allows."""
    return StorageError(413, "EntityTooLarge", "The object exceeded the maximum allowed size", "Payload too large")


def invalid_mime_type(mimetype: str) -> StorageError:
    """The bucket's allow-list does not admit this content type."""
    return StorageError(415, "InvalidMimeType", f"mime type {mimetype} is not supported", "invalid_mime_type")


def invalid_jwt(message: str = "Invalid JWT") -> StorageError:
    """A missing, malformed or badly signed token."""
    return StorageError(400, "InvalidJWT", message)


def invalid_signature(message: str = "Invalid signature") -> StorageError:
    """A well-formed URL token that does not grant this request."""
    return StorageError(400, "InvalidSignature", message)


def expired_token() -> StorageError:
    """A URL token past its `exp`."""
    return StorageError(400, "ExpiredToken", "The provided token has expired.")


def denied_by_database(exc: psycopg.Error) -> StorageError:
    """Storage's answer to the database refusing a statement for want of privilege (42501, its `DBError`): a policy's
    refusal in its fixed words, anything else (a trigger's refusal) in the database's own."""
    message = exc.diag.message_primary or ""
    return access_denied() if "row-level security" in message or not message else access_denied(message)


def access_denied(message: str = "new row violates row-level security policy") -> StorageError:
    """Row-level security refused the caller."""
    return StorageError(403, "AccessDenied", message, "Unauthorized")


def invalid_request(message: str) -> StorageError:
    """The request is malformed."""
    return StorageError(400, "InvalidRequest", message)


def invalid_key(key: str) -> StorageError:
    """The object name is not one Storage accepts (echoed as Storage does, cut short when it is long)."""
    shown = key if len(key) <= _ECHOED_KEY_CHARS else f"{key[:_ECHOED_KEY_CHARS]}..."
    return StorageError(400, "InvalidKey", f"Invalid key: {shown}")


def invalid_parameter(name: str) -> StorageError:
    """A parameter out of its range (Storage's `InvalidParameter`)."""
    return StorageError(400, "InvalidParameter", f"Invalid Parameter {name}")


def internal_error() -> StorageError:
    """Something failed on our side; the details stay in the log."""
    return StorageError(500, "InternalError", "Internal Server Error", "internal")


def busy() -> StorageError:
    """Every database connection is busy with other requests; retry shortly."""
    return StorageError(429, "TooManyRequests", "Too many requests at once; retry shortly", "too_many_requests")


def database_unavailable() -> StorageError:
    """The database cannot be reached; retry shortly."""
    return StorageError(503, "DatabaseTimeout", "The database is unreachable; retry shortly", "database_timeout")


def role_denied() -> StorageError:
    """A route only the service key may call (Storage's `enforceJwtRole`), called with another role: AccessDenied
    with a real 403."""
    return StorageError(403, "AccessDenied", "Access denied: Invalid role", "Unauthorized", http_status=403)


def bucket_already_exists() -> StorageError:
    """A bucket with that id or name exists."""
    return StorageError(409, "BucketAlreadyExists", "The resource already exists", "Duplicate")


def bucket_not_empty() -> StorageError:
    """A bucket still holding objects cannot be deleted (empty it first)."""
    return StorageError(409, "ResourceNotEmpty", "The bucket you tried to delete is not empty")


def invalid_bucket_name() -> StorageError:
    """A bucket name Storage refuses (or, here, one that cannot be a directory name)."""
    return StorageError(400, "InvalidBucketName", "Bucket name invalid", "Invalid Input")


def feature_not_enabled(feature: str) -> StorageError:
    """A feature this Storage does not have (an ANALYTICS bucket), in Storage's own words for it."""
    return StorageError(409, "FeatureNotEnabled", f"The feature {feature} is not enabled for this resource")
