"""Settings from TETHER_* environment variables, with one table of defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from tether.core.errors import ConfigurationError
from tether.core.policy import Policies
from tether.core.sealing import FernetCodec, PayloadCodec
from tether.core.validation import DEFAULT_MAX_PAYLOAD_BYTES

DEFAULTS = {
    "TETHER_STORE_URL": "sqlite:///tether.db",
    "TETHER_MAX_PAYLOAD_BYTES": str(DEFAULT_MAX_PAYLOAD_BYTES),
    "TETHER_POLICY_FILE": "tether.toml",
    # full: an acknowledged write survives power loss; normal: survives a process crash only.
    "TETHER_SQLITE_SYNCHRONOUS": "full",
    "TETHER_DEBUG": "0",  # 1: the CLI shows the traceback of an unexpected error
    "TETHER_REDIS_URL": "",  # set: heartbeats and leases live in Redis (tether[redis])
    "TETHER_REDIS_FLUSH_INTERVAL": "5",  # seconds between copies of Redis leases into the store
    "TETHER_ENCRYPTION_KEY": "",  # set: payloads are encrypted at rest (tether[encryption], docs/data.md)
}


def setting(name: str) -> str:
    return os.environ.get(name) or DEFAULTS[name]


def store_url(explicit: str | None = None) -> str:
    """The store to open: an explicit URL, else TETHER_STORE_URL, else ./tether.db."""
    return explicit or setting("TETHER_STORE_URL")


def redis_url(explicit: str | None = None) -> str | None:
    """Where leases live if not in the store: an explicit URL, else TETHER_REDIS_URL, else nowhere."""
    return explicit or setting("TETHER_REDIS_URL") or None


def max_payload_bytes() -> int:
    raw = setting("TETHER_MAX_PAYLOAD_BYTES")
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"TETHER_MAX_PAYLOAD_BYTES must be an integer, got {raw!r}") from None
    if value <= 0:
        raise ConfigurationError("TETHER_MAX_PAYLOAD_BYTES must be positive")
    return value


def redis_flush_interval() -> float:
    raw = setting("TETHER_REDIS_FLUSH_INTERVAL")
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"TETHER_REDIS_FLUSH_INTERVAL must be a number, got {raw!r}") from None
    if not value > 0:
        raise ConfigurationError("TETHER_REDIS_FLUSH_INTERVAL must be positive")
    return value


def policies() -> Policies:
    """Policies from TETHER_POLICY_FILE (default ./tether.toml) if it exists, else built-ins."""
    path = Path(setting("TETHER_POLICY_FILE"))
    if not path.exists():
        if "TETHER_POLICY_FILE" in os.environ:
            raise ConfigurationError(f"TETHER_POLICY_FILE {path} does not exist")
        return Policies()
    return Policies.from_toml(path)


@dataclass(frozen=True)
class Settings:
    store_url: str
    max_payload_bytes: int
    policies: Policies
    codec: PayloadCodec | None = None

    @classmethod
    def from_env(cls, store: str | None = None) -> Settings:
        return cls(store_url(store), max_payload_bytes(), policies(), FernetCodec.from_env())
