"""The fast JSON path accepts and returns exactly what the standard library would."""

from __future__ import annotations

import dataclasses
import enum
import json
import uuid
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tether.core.codec import decode, encode


class Colour(enum.Enum):
    RED = 1


class Level(enum.IntEnum):
    HIGH = 3


class Tag(str):
    pass


@dataclasses.dataclass
class Point:
    x: int


def _standard(value: Any) -> Any:
    """What the standard library stores and reads back, or the type of error it raises."""
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
        text.encode()
    except (TypeError, ValueError) as exc:
        return type(exc)
    return json.loads(text)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(st.dictionaries(st.text(max_size=5), json_values, max_size=5))
def test_encoding_matches_the_standard_library(value: dict[str, Any]) -> None:
    expected = _standard(value)
    if isinstance(expected, type):
        with pytest.raises(expected):
            encode(value)
        return
    encoded = encode(value)
    assert encoded.copy == expected
    assert json.loads(encoded.text) == expected
    assert encoded.size == len(encoded.text.encode())


@pytest.mark.parametrize(
    "value",
    [
        uuid.UUID(int=7),  # orjson would write these; the standard library refuses them
        Colour.RED,
        Point(1),
        datetime(2026, 1, 1, tzinfo=UTC),
        {1, 2},
        b"raw",
        object(),
    ],
    ids=["uuid", "enum", "dataclass", "datetime", "set", "bytes", "object"],
)
def test_what_is_not_json_is_refused_as_the_standard_library_refuses_it(value: Any) -> None:
    with pytest.raises(TypeError):
        encode({"x": value})


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ({"x": Level.HIGH}, {"x": 3}),
        ({"x": Tag("t")}, {"x": "t"}),
        (OrderedDict(b=1, a=2), {"b": 1, "a": 2}),
        ({"x": (1, 2)}, {"x": [1, 2]}),
        ({"n": 2**64 + 1}, {"n": 2**64 + 1}),
        ({1: "int key"}, {"1": "int key"}),
    ],
    ids=["int enum", "str subclass", "dict subclass", "tuple", "beyond 64 bits", "int key"],
)
def test_what_the_standard_library_accepts_is_stored_as_it_would_store_it(
    value: dict[Any, Any], stored: dict[str, Any]
) -> None:
    encoded = encode(value)
    assert encoded.copy == stored and type(encoded.copy) is dict
    assert json.loads(encoded.text) == stored


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_numbers_are_refused_not_stored_as_null(value: float) -> None:
    with pytest.raises(ValueError):
        encode({"x": value})


def test_a_lone_surrogate_is_refused() -> None:
    with pytest.raises(UnicodeEncodeError):
        encode({"x": "\udfff"})


def test_the_decoded_copy_is_a_new_object() -> None:
    inner = {"k": [1, 2]}
    encoded = encode({"inner": inner})
    assert encoded.copy["inner"] == inner and encoded.copy["inner"] is not inner


@pytest.mark.parametrize(
    "text", ['{"n":12345678901234567890123}', '{"n":-99999999999999999999}', '{"f":1e400}']
)
def test_decoding_keeps_what_orjson_would_round(text: str) -> None:
    assert decode(text) == json.loads(text)


@pytest.mark.parametrize(
    "value",
    [
        {"u64_max": 2**64 - 1, "past_u64": 2**64, "huge": 2**70, "below_i64": -(2**63) - 1},
        {"digits in a string": "1234567890123456789012", "small": 12, "float": 0.1},
        {"non-ascii": "é ✓ 漢字", "n": [1, 2.5, -3], "nested": {"deep": [None, True, False]}},
    ],
)
def test_stored_json_decodes_exactly_as_the_standard_library(value: dict[str, object]) -> None:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    decoded = decode(text)
    assert decoded == value
    assert [type(v) for v in decoded.values()] == [type(v) for v in value.values()]
