"""Keyset cursors: opaque, exact to the microsecond, and refused when forged."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tether import Page, Session, State, ValidationError
from tether.stores.base import decode_cursor, encode_cursor, from_micros, page_of, to_micros

SESSION = Session(
    "s-1", "tutor", "u", State.ACTIVE, datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)
)


@given(
    st.datetimes(datetime(1971, 1, 1), datetime(2200, 1, 1), timezones=st.just(UTC)),
    st.text(min_size=1, max_size=50).filter(str.isprintable),  # as check_text lets ids through
)
def test_a_cursor_decodes_to_the_exact_created_at_and_id(created: datetime, session_id: str) -> None:
    cursor = encode_cursor(replace(SESSION, created_at=created, session_id=session_id))
    assert decode_cursor(cursor) == (to_micros(created), session_id)
    assert from_micros(to_micros(created)) == created
    assert "=" not in cursor and "/" not in cursor and "+" not in cursor


@given(st.datetimes(timezones=st.just(UTC)))
def test_every_datetime_survives_micros(value: datetime) -> None:
    assert from_micros(to_micros(value)) == value


def test_micros_compare_instants_not_wall_clocks() -> None:
    utc = datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert to_micros(utc.astimezone(timezone(timedelta(hours=2)))) == to_micros(utc)
    assert to_micros(utc + timedelta(microseconds=1)) == to_micros(utc) + 1


def test_ids_with_colons_survive() -> None:
    assert decode_cursor(encode_cursor(replace(SESSION, session_id="a:b:c")))[1] == "a:b:c"


def _b64(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


FORGED = {
    "empty": "",
    "not base64": "!!!",
    "no colon": _b64("nope"),
    "not utf-8": "abc",
    "not a number": _b64("xx:y"),
    "no id": _b64("12:"),
    "padded number": _b64(" 12:x"),
    "arabic digit": _b64("\u0663:x"),
    "beyond any date": _b64("9" * 25 + ":x"),
    "before any date": _b64("-" + "9" * 25 + ":x"),
    "NUL in id": _b64("12:\x00"),
}


@pytest.mark.parametrize("forged", FORGED.values(), ids=FORGED.keys())
def test_forged_cursors_are_a_validation_error(forged: str) -> None:
    with pytest.raises(ValidationError) as caught:
        decode_cursor(forged)
    assert caught.value.field == "cursor"


def test_page_of_uses_the_extra_row_only_to_say_there_is_more() -> None:
    rows = [replace(SESSION, session_id=f"s-{n}") for n in range(4)]
    full = page_of(rows, 3)
    assert [s.session_id for s in full] == ["s-0", "s-1", "s-2"]
    assert full.next_cursor == encode_cursor(rows[2])
    assert page_of(rows[:3], 3) == Page(rows[:3], None)
