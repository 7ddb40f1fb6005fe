"""Encryption at rest: payloads sealed before they reach any store, opened after they leave it.

A session's context and metadata, its failure details and every checkpoint's data are JSON
objects; sealed, each becomes `{"$tether_sealed": "<token>"}`, the token being the encrypted exact
JSON text, so a read gives back the very object written (key order and numbers included) and
every store keeps its JSON columns. Ids, names, agent types, users, states, phases, epochs and
timestamps stay in clear: stores index, fence and list by them, and the supervisor must judge
leases without a key (docs/data.md).

`PayloadCodec` is what a manager takes (`SessionManager(url, codec=...)`); `FernetCodec` is the
one Tether ships (`pip install 'tether[encryption]'`), keyed by TETHER_ENCRYPTION_KEY.
"""

from __future__ import annotations

import os
from typing import Any, Protocol

from tether.core.codec import decode, encode
from tether.core.errors import ConfigurationError, DecryptionError

SEALED = "$tether_sealed"
KEY_VARIABLE = "TETHER_ENCRYPTION_KEY"


class PayloadCodec(Protocol):
    """Turns plaintext bytes into a text token and back. `open` raises ValueError when the token
    was not sealed by (one of) its keys or was damaged: never wrong bytes."""

    def seal(self, plaintext: bytes) -> str: ...

    def open(self, token: str) -> bytes: ...


class FernetCodec:
    """Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`) over one or more keys: the first
    seals, any of them opens: keys rotate by putting the new one first, and the old one may go
    once nothing sealed with it is left (rewritten, or removed by retention)."""

    def __init__(self, *keys: str | bytes) -> None:
        try:
            from cryptography.fernet import Fernet, InvalidToken, MultiFernet
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ConfigurationError(
                "encryption needs the cryptography package: pip install 'tether[encryption]'"
            ) from exc
        if not keys:
            raise ConfigurationError(f"{KEY_VARIABLE}: at least one key is needed")
        try:
            self._fernet = MultiFernet([Fernet(key) for key in keys])
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(
                f"{KEY_VARIABLE}: not a Fernet key (32 url-safe base64-encoded bytes; make one with "
                "`python -c 'from tether import FernetCodec; print(FernetCodec.generate_key())'`)"
            ) from exc
        self._invalid = InvalidToken

    @staticmethod
    def generate_key() -> str:
        from cryptography.fernet import Fernet

        return Fernet.generate_key().decode()

    @classmethod
    def from_env(cls) -> FernetCodec | None:
        """The keys in TETHER_ENCRYPTION_KEY, comma-separated, newest first; None if unset."""
        raw = os.environ.get(KEY_VARIABLE, "").strip()
        if not raw:
            return None
        return cls(*(key.strip() for key in raw.split(",") if key.strip()))

    def seal(self, plaintext: bytes) -> str:
        return self._fernet.encrypt(plaintext).decode("ascii")

    def open(self, token: str) -> bytes:
        try:
            return self._fernet.decrypt(token.encode("ascii"))
        except (self._invalid, UnicodeEncodeError) as exc:
            raise ValueError("not sealed by any of the keys, or damaged") from exc


def is_sealed(value: object) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get(SEALED), str)


def seal(codec: PayloadCodec, value: dict[str, Any]) -> dict[str, Any]:
    """The sealed form of a JSON object (already validated, so it encodes)."""
    return {SEALED: codec.seal(encode(value).text.encode())}


def unseal(codec: PayloadCodec, value: dict[str, Any], session_id: str, field: str) -> dict[str, Any]:
    """The object `seal` sealed; anything not sealed (written before encryption was turned on)
    is returned as it is. DecryptionError, naming the session and field, for a wrong key."""
    if not is_sealed(value):
        return value
    try:
        opened: dict[str, Any] = decode(codec.open(value[SEALED]))
    except ValueError as exc:
        raise DecryptionError(session_id, field) from exc
    return opened
