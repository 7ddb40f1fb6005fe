"""Every error Tether raises. The tree is part of the API::

    TetherError
    ├── NotFound                 no session with that id (for this caller)
    ├── InvalidTransition        the state machine forbids the action in the current state
    ├── ConflictError            the session changed under you (stale version, lost race)
    │   ├── LeaseLost            your epoch is not the current one: another worker took over
    │   └── NotClaimable         claim() on a session whose lease is alive or that is final
    ├── ValidationError          bad input; names the field and the problem (also a ValueError)
    │   └── PayloadTooLarge      data over the configured byte limit
    ├── StoreUnavailable         the store cannot be reached; the write did not happen
    ├── SchemaMismatch           the database schema is newer than this code
    ├── ConfigurationError       bad URL, policy file or a missing optional dependency
    ├── DecryptionError          an encrypted payload does not open with the configured keys
    └── AuthError                missing or wrong API key (HTTP client/server only)

Each class carries its values as attributes so callers never parse messages.
"""

from __future__ import annotations


class TetherError(Exception):
    """Root of every error Tether raises on purpose."""

    request_id: str | None = None  # set by tether.Client: the server's X-Request-ID for this answer


class NotFound(TetherError):
    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        super().__init__(f"session {session_id!r} not found")


class InvalidTransition(TetherError):
    def __init__(self, session_id: str, state: str, action: str) -> None:
        self.session_id = session_id
        self.state = state
        self.action = action
        super().__init__(f"session {session_id!r} is {state}: cannot {action}")


class ConflictError(TetherError):
    def __init__(
        self,
        session_id: str,
        message: str | None = None,
        *,
        expected_version: int | None = None,
        actual_version: int | None = None,
    ) -> None:
        self.session_id = session_id
        self.expected_version = expected_version
        self.actual_version = actual_version
        super().__init__(
            message
            or f"session {session_id!r} changed concurrently: expected version "
            f"{expected_version}, found {actual_version}"
        )


class LeaseLost(ConflictError):
    def __init__(
        self, session_id: str, epoch: int | None, current_epoch: int, reason: str | None = None
    ) -> None:
        self.epoch = epoch
        self.current_epoch = current_epoch
        self.reason = reason or "another worker took the session over"
        super().__init__(
            session_id,
            f"session {session_id!r}: lease lost ({self.reason}; your epoch {epoch}, "
            f"current epoch {current_epoch})",
        )


class NotClaimable(ConflictError):
    def __init__(self, session_id: str, reason: str) -> None:
        self.reason = reason
        super().__init__(session_id, f"session {session_id!r} cannot be claimed: {reason}")


class ValidationError(TetherError, ValueError):
    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


class PayloadTooLarge(ValidationError):
    def __init__(self, field: str, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(field, f"{size} bytes of JSON is over the limit of {limit} bytes")


class StoreUnavailable(TetherError):
    """The store could not be reached or failed mid-write; nothing was acknowledged."""


class SchemaMismatch(TetherError):
    def __init__(self, found: int, supported: int) -> None:
        self.found = found
        self.supported = supported
        super().__init__(
            f"database schema version {found} is newer than this Tether supports "
            f"({supported}); upgrade Tether"
        )


class ConfigurationError(TetherError):
    """A bad store URL, policy file, setting, or a missing optional dependency."""


class DecryptionError(TetherError):
    """A sealed payload that none of the manager's keys opens: a wrong key, never garbage."""

    def __init__(self, session_id: str, field: str) -> None:
        self.session_id = session_id
        self.field = field
        super().__init__(
            f"session {session_id!r}: {field} is encrypted with a key this manager does not have "
            "(or is damaged); check TETHER_ENCRYPTION_KEY"
        )


class AuthError(TetherError):
    """Missing, unknown or insufficient API key."""
