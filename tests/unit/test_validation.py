"""Input checks: each names the field and says what is wrong."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tether import PayloadTooLarge, ValidationError
from tether.core.validation import (
    MAX_ID_LENGTH,
    MAX_SECONDS,
    check_limit,
    check_optional_text,
    check_positive,
    check_text,
    encode_json,
)


@pytest.mark.parametrize("good", ["a", "user-1", "x" * MAX_ID_LENGTH, "ünïcödé 日本 🚀", "inner space"])
def test_check_text_accepts_printable_trimmed_strings(good: str) -> None:
    assert check_text("session_id", good) == good


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        ("", "empty"),
        ("x" * (MAX_ID_LENGTH + 1), "limit"),
        (" lead", "whitespace"),
        ("trail ", "whitespace"),
        ("a\x00b", "printable"),
        ("a\u2028b", "printable"),
        ("a\ud800b", "printable"),
        (None, "string"),
        (12, "string"),
        (b"bytes", "string"),
    ],
)
def test_check_text_rejects_naming_field_and_problem(bad: Any, problem: str) -> None:
    with pytest.raises(ValidationError) as caught:
        check_text("agent_type", bad)
    assert caught.value.field == "agent_type"
    assert problem in caught.value.problem
    assert str(caught.value).startswith("agent_type: ")


def test_check_text_honours_a_custom_limit() -> None:
    assert check_text("name", "abc", max_length=3) == "abc"
    with pytest.raises(ValidationError):
        check_text("name", "abcd", max_length=3)


def test_optional_text_allows_none_only() -> None:
    assert check_optional_text("phase", None) is None
    with pytest.raises(ValidationError):
        check_optional_text("phase", "")


def test_encode_json_is_compact_and_keeps_unicode() -> None:
    assert encode_json("data", {"a": [1, 2], "ü": "日本"}) == '{"a":[1,2],"ü":"日本"}'


NOT_JSON_OBJECTS: dict[str, Any] = {
    "NaN": {"x": float("nan")},
    "-Infinity": {"x": float("-inf")},
    "set": {"x": {1, 2}},
    "frozenset": {"x": frozenset()},
    "bytes": {"x": b"raw"},
    "object": {"x": object()},
    "complex": {"x": 1j},
    "lone surrogate": {"x": "\udc80"},
    "tuple key": {(1, 2): "tuple key"},
    "list": [1],
    "string": "text",
    "None": None,
}


@pytest.mark.parametrize("bad", NOT_JSON_OBJECTS.values(), ids=NOT_JSON_OBJECTS.keys())
def test_encode_json_rejects_what_json_cannot_hold(bad: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        encode_json("context", bad)
    assert caught.value.field == "context"


def test_encode_json_rejects_circular_data() -> None:
    loop: dict[str, Any] = {}
    loop["self"] = loop
    with pytest.raises(ValidationError):
        encode_json("data", loop)


def test_payload_limit_is_exact_in_utf8_bytes() -> None:
    at_limit = {"x": "é" * 10}  # '{"x":""}' is 8 bytes, plus 20 bytes of é
    assert encode_json("data", at_limit, limit=28)
    with pytest.raises(PayloadTooLarge) as caught:
        encode_json("data", at_limit, limit=27)
    assert (caught.value.field, caught.value.size, caught.value.limit) == ("data", 28, 27)
    assert isinstance(caught.value, ValidationError)


@given(st.dictionaries(st.text(max_size=5), st.text(max_size=30), max_size=6), st.integers(1, 200))
def test_payload_too_large_exactly_when_the_encoding_is_over_the_limit(
    data: dict[str, str], limit: int
) -> None:
    size = len(json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode())
    if size > limit:
        with pytest.raises(PayloadTooLarge):
            encode_json("data", data, limit=limit)
    else:
        assert json.loads(encode_json("data", data, limit=limit)) == data


@pytest.mark.parametrize("good", [0.001, 1, 3600.5, MAX_SECONDS])
def test_check_positive_accepts_positive_finite_numbers(good: float) -> None:
    assert check_positive("expect_silence", good) == float(good)
    assert check_positive("expect_silence", None) is None


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), True, "5", MAX_SECONDS + 1, 1e300])
def test_check_positive_rejects_the_rest(bad: Any) -> None:
    with pytest.raises(ValidationError, match="expect_silence"):
        check_positive("expect_silence", bad)


@pytest.mark.parametrize("good", [1, 50, 10_000])
def test_check_limit_accepts_one_to_the_maximum(good: int) -> None:
    assert check_limit("limit", good) == good


@pytest.mark.parametrize("bad", [0, -1, 10_001, True, 2.0, "3", None])
def test_check_limit_rejects_the_rest(bad: Any) -> None:
    with pytest.raises(ValidationError, match="limit"):
        check_limit("limit", bad)
