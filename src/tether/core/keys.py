"""API keys for `tether serve`: minted here, kept by the store only as a hash, checked in constant time.

A key reads `tth_<key_id>_<secret>`: the typed prefix lets secret scanners find a leaked one, the key id
finds the stored record with one indexed read, and the secret (256 random bits) is compared by its
SHA-256. A slow password hash buys nothing for a random secret of that size.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

PREFIX = "tth_"
KEY_ID_BYTES = 6  # 12 hex characters


@dataclass(frozen=True, slots=True)
class ApiKey:
    """What the store keeps of a key: never the secret itself."""

    key_id: str
    user_id: str
    admin: bool
    secret_hash: str
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def mint(user_id: str, admin: bool, now: datetime) -> tuple[str, ApiKey]:
    """A new key: (the text to hand to the user once, the record to store)."""
    key_id = secrets.token_hex(KEY_ID_BYTES)
    secret = secrets.token_urlsafe(32)
    return f"{PREFIX}{key_id}_{secret}", ApiKey(key_id, user_id, admin, hash_secret(secret), now)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split(text: str) -> tuple[str, str] | None:
    """(key_id, secret) of a presented key, or None if it is not shaped like one."""
    if not text.startswith(PREFIX):
        return None
    key_id, sep, secret = text[len(PREFIX) :].partition("_")
    if not sep or len(key_id) != 2 * KEY_ID_BYTES or not secret or not key_id.isalnum():
        return None
    return key_id, secret


def matches(key: ApiKey, secret: str) -> bool:
    """True if `secret` is this active key's, compared in constant time."""
    return key.active and hmac.compare_digest(key.secret_hash, hash_secret(secret))
