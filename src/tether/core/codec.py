"""JSON in and out of every store: strict like the standard library, at orjson's speed.

The standard library's encoder is the definition of what Tether accepts: plain JSON types only,
no NaN or Infinity, no sets, bytes or custom objects. orjson is much faster but more lenient (it
writes UUIDs, enums and dataclasses, and NaN as null), so its output is trusted only when
decoding it gives back a value equal to the input: then the input was plain JSON and the decoded
copy is exactly what a later read returns. Anything else takes the standard library's path, which
accepts or rejects it as it always has.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

import orjson

_encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
# Dataclasses, datetimes and subclasses of str/int/dict/list go to `_refuse` instead of being
# written by orjson's own rules, so the standard library decides about them.
_STRICT = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS

# orjson reads an integer beyond 64 bits as a float, so text with a run of 19 or more digits goes
# to the standard library. The run is found at C speed: the UTF-8 bytes with every ASCII digit
# turned into b"0" and every other byte into b" " (a regex search costs more than json.loads),
# searched with `find`: `in` on bytes first tries its operand as an integer and clears the TypeError.
_DIGITS_AS_ZEROS = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
_LONG_NUMBER = b"0" * 19


class Encoded:
    """JSON text, its size in UTF-8 bytes, and a decoded copy equal to what a read returns."""

    __slots__ = ("copy", "size", "text")

    def __init__(self, text: str, size: int, copy: Any) -> None:
        self.text = text
        self.size = size
        self.copy = copy


def _refuse(value: object) -> NoReturn:
    raise TypeError(type(value).__name__)


def encode(value: Any) -> Encoded:
    """Encode `value`; ValueError (NaN, Infinity, circular), TypeError (not JSON),
    RecursionError or UnicodeEncodeError (a lone surrogate) as the standard library raises them."""
    try:
        raw = orjson.dumps(value, default=_refuse, option=_STRICT)
    except TypeError:  # orjson.JSONEncodeError included: big ints, surrogates, nesting, odd types
        pass
    else:
        copy = orjson.loads(raw)
        if copy == value:
            return Encoded(raw.decode(), len(raw), copy)
    text = _encoder.encode(value)
    size = len(text) if text.isascii() else len(text.encode())
    return Encoded(text, size, decode(text))


def decode(text: str | bytes) -> Any:
    """Decode JSON this store wrote, exactly as the standard library would, faster when it can
    (text, or UTF-8 bytes as psycopg hands over json and jsonb values)."""
    raw = text.encode() if isinstance(text, str) else text
    if raw.translate(_DIGITS_AS_ZEROS).find(_LONG_NUMBER) < 0:
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:  # anything else orjson refuses: the standard library decides
            pass
    return json.loads(text)
