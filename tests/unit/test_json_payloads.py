"""Payload checks that every store relies on: what cannot be stored is refused before any I/O."""

from __future__ import annotations

import pytest

from tether import PayloadTooLarge, ValidationError
from tether.core.validation import encode_json


def test_a_lone_surrogate_is_a_validation_error_not_a_driver_error() -> None:
    with pytest.raises(ValidationError, match="surrogate"):
        encode_json("data", {"text": "\ud800"})


def test_non_ascii_text_is_measured_in_utf8_bytes() -> None:
    assert encode_json("data", {"t": "é" * 10}, limit=40) == '{"t":"' + "é" * 10 + '"}'
    with pytest.raises(PayloadTooLarge) as caught:
        encode_json("data", {"t": "é" * 20}, limit=40)
    assert caught.value.size == len('{"t":""}') + 40
