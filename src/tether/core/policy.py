"""Liveness policies per agent type: how long an agent may be silent and what happens then."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from tether.core.duration import parse_duration
from tether.core.errors import ConfigurationError
from tether.core.validation import MAX_SECONDS


class OnTimeout(StrEnum):
    FAIL = "fail"  # the session fails for good
    RECOVER = "recover"  # the session fails and another worker may claim it


@dataclass(frozen=True, slots=True)
class Policy:
    timeout: float = 60.0  # seconds without a heartbeat before the lease expires
    suspect_after: float | None = None  # soft deadline; default half the timeout
    on_timeout: OnTimeout = OnTimeout.RECOVER
    max_recoveries: int = 3  # takeovers allowed before a failure is final
    # Seconds an ended session is kept after it ended (None: for ever); the supervisor removes
    # older ones with their checkpoints. tether.toml writes them as durations: "30d".
    retain_completed: float | None = None
    retain_failed: float | None = None

    def __post_init__(self) -> None:
        """Refuse values that would silently misbehave (a bool timeout, a string on_timeout that
        never equals the enum, an infinite lease), naming the field."""
        _check_seconds("timeout", self.timeout)
        for name in ("retain_completed", "retain_failed"):
            if getattr(self, name) is not None:
                _check_seconds(name, getattr(self, name))
        if self.suspect_after is not None:
            _check_seconds("suspect_after", self.suspect_after)
            if self.suspect_after > self.timeout:
                raise ConfigurationError(
                    f"suspect_after must be in (0, timeout={self.timeout}], got {self.suspect_after!r}"
                )
        if (
            isinstance(self.max_recoveries, bool)
            or not isinstance(self.max_recoveries, int)
            or self.max_recoveries < 0
        ):
            raise ConfigurationError(f"max_recoveries must be an integer >= 0, got {self.max_recoveries!r}")
        try:
            object.__setattr__(self, "on_timeout", OnTimeout(self.on_timeout))
        except ValueError:
            raise ConfigurationError(
                f"on_timeout must be 'fail' or 'recover', got {self.on_timeout!r}"
            ) from None

    @property
    def soft_deadline(self) -> float:
        return self.suspect_after if self.suspect_after is not None else self.timeout / 2

    def can_recover(self, recoveries: int) -> bool:
        return self.on_timeout is OnTimeout.RECOVER and recoveries < self.max_recoveries


@dataclass(frozen=True)
class Policies:
    """A default policy plus overrides by agent type."""

    default: Policy = field(default_factory=Policy)
    by_type: Mapping[str, Policy] = field(default_factory=dict)

    def for_type(self, agent_type: str) -> Policy:
        return self.by_type.get(agent_type, self.default)

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any]) -> Policies:
        """Read `{"default": {...}, "tutor": {...}}`; types inherit unset keys from default."""
        default = _policy("default", table.get("default", {}), Policy())
        by_type = {
            name: _policy(name, values, default) for name, values in table.items() if name != "default"
        }
        return cls(default, by_type)

    @classmethod
    def from_toml(cls, path: str | Path) -> Policies:
        """Load the `[policies.*]` tables of a tether.toml."""
        try:
            with open(path, "rb") as fh:
                document = tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigurationError(f"cannot read policies from {path}: {exc}") from exc
        return cls.from_mapping(document.get("policies", {}))


_KNOWN_KEYS = {f.name for f in fields(Policy)}


def _policy(name: str, values: Any, base: Policy) -> Policy:
    if not isinstance(values, Mapping):
        raise ConfigurationError(f"policies.{name} must be a table")
    unknown = set(values) - _KNOWN_KEYS
    if unknown:
        raise ConfigurationError(f"policies.{name}: unknown keys {sorted(unknown)}")
    try:
        return replace(base, **{key: _seconds_of(key, value) for key, value in values.items()})
    except ConfigurationError as exc:
        raise ConfigurationError(f"policies.{name}.{exc}") from None


def _seconds_of(key: str, value: Any) -> Any:
    """Retention periods may be written as durations ("30d"); other values pass unchanged."""
    if key not in _DURATION_KEYS or not isinstance(value, str):
        return value
    try:
        return parse_duration(value).total_seconds()
    except ValueError as exc:
        raise ConfigurationError(f"{key}: {exc}") from None


_DURATION_KEYS = frozenset({"retain_completed", "retain_failed"})


def _check_seconds(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= MAX_SECONDS:
        raise ConfigurationError(
            f"{name} must be a positive number of seconds up to {MAX_SECONDS}, got {value!r}"
        )
