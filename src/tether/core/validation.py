"""Input checks that run before any I/O, each naming the field it rejects."""

from __future__ import annotations

import math
from typing import Any

from tether.core.codec import Encoded, encode
from tether.core.errors import ConfigurationError, PayloadTooLarge, ValidationError

MAX_ID_LENGTH = 200
MAX_NAME_LENGTH = 200
DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024
MAX_COUNTER = 2**63 - 1  # the largest seq / epoch / version a store column holds
MAX_SECONDS = 100 * 366 * 86_400  # any duration: past this, datetime arithmetic overflows or means nothing


def check_text(field: str, value: object, max_length: int = MAX_ID_LENGTH) -> str:
    """Ids, names and agent types: non-empty printable strings without edge whitespace."""
    if not isinstance(value, str):
        raise ValidationError(field, f"must be a string, got {type(value).__name__}")
    if not value:
        raise ValidationError(field, "must not be empty")
    if len(value) > max_length:
        raise ValidationError(field, f"is {len(value)} characters, the limit is {max_length}")
    if not value.isprintable() or value != value.strip():
        raise ValidationError(field, "must be printable, without leading/trailing whitespace")
    return value


def check_optional_text(field: str, value: object, max_length: int = MAX_ID_LENGTH) -> str | None:
    return None if value is None else check_text(field, value, max_length)


def encode_json(field: str, value: object, limit: int = DEFAULT_MAX_PAYLOAD_BYTES) -> str:
    """JSON text of a dict payload, or a ValidationError naming the field.

    Encoded once here and handed to the store, so the payload is never serialised twice.
    """
    return encode_payload(field, value, limit).text


def encode_payload(field: str, value: object, limit: int = DEFAULT_MAX_PAYLOAD_BYTES) -> Encoded:
    """`encode_json`, also giving the decoded copy a write returns (so no store decodes it again)."""
    if not isinstance(value, dict):
        raise ValidationError(field, f"must be a JSON object (dict), got {type(value).__name__}")
    try:
        encoded = encode(value)
    except UnicodeEncodeError:  # a lone surrogate: no database (nor UTF-8 JSON) can hold it
        raise ValidationError(field, "contains a lone surrogate, which is not valid Unicode") from None
    except ValueError as exc:  # NaN / Infinity, circular references
        raise ValidationError(field, f"is not valid JSON: {exc}") from None
    except TypeError as exc:  # sets, bytes, custom objects, non-string keys of odd types
        raise ValidationError(field, f"is not valid JSON: {exc}") from None
    except RecursionError:  # nesting deeper than the interpreter's stack (about 1,000 levels)
        raise ValidationError(field, "is nested too deeply to encode") from None
    if encoded.size > limit:
        raise PayloadTooLarge(field, encoded.size, limit)
    return encoded


def check_error(value: object, limit: int = DEFAULT_MAX_PAYLOAD_BYTES) -> str:
    """A failure's message: any non-empty text a store can hold. NUL is refused on every store,
    because PostgreSQL text cannot hold it (the stores must agree)."""
    if not isinstance(value, str) or not value:
        raise ValidationError("error", f"must be a non-empty string, got {value!r:.40}")
    if "\x00" in value:
        raise ValidationError("error", "must not contain the NUL character")
    try:
        size = len(value.encode())
    except UnicodeEncodeError:
        raise ValidationError("error", "contains a lone surrogate, which is not valid Unicode") from None
    if size > limit:
        raise PayloadTooLarge("error", size, limit)
    return value


def check_flag(field: str, value: object) -> bool:
    """A yes/no argument: only True or False (a truthy "no" must not mean yes)."""
    if not isinstance(value, bool):
        raise ValidationError(field, f"must be True or False, got {value!r:.40}")
    return value


def check_optional_cursor(value: object) -> str | None:
    """A page cursor is the string a previous page handed out; its content is checked by the store."""
    if value is not None and not isinstance(value, str):
        raise ValidationError("cursor", f"must be a string from a previous page, got {type(value).__name__}")
    return value


def check_payload_limit(value: object) -> int:
    """A manager's byte limit: 0 or a negative limit would refuse every payload."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigurationError(f"max_payload_bytes must be a positive integer, got {value!r}")
    return value


def check_positive(field: str, value: float | None) -> float | None:
    """Durations in seconds; bounded so that `now + value` stays a date every store can hold."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationError(field, f"must be a finite number, got {value!r}")
    if value <= 0:
        raise ValidationError(field, f"must be positive, got {value!r}")
    if value > MAX_SECONDS:
        raise ValidationError(field, f"must be at most {MAX_SECONDS} seconds (100 years), got {value!r}")
    return float(value)


def check_counter(field: str, value: object, minimum: int) -> int:
    """Seqs, epochs and versions: plain integers (not bools, not "1") in the range every store's
    integer columns hold, so a bad value is named here instead of failing inside a driver."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field, f"must be an integer, got {value!r}")
    if not minimum <= value <= MAX_COUNTER:
        raise ValidationError(field, f"must be between {minimum} and {MAX_COUNTER}, got {value}")
    return value


def check_optional_counter(field: str, value: object, minimum: int) -> int | None:
    return None if value is None else check_counter(field, value, minimum)


def check_limit(field: str, value: Any, maximum: int = 10_000) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field, f"must be an integer, got {value!r}")
    if not 1 <= value <= maximum:
        raise ValidationError(field, f"must be between 1 and {maximum}, got {value}")
    return value
