"""Bad input is rejected before anything is written, with an error that names the field."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from tether import Beat, ManualClock, PayloadTooLarge, SessionManager, ValidationError
from tether.core.validation import DEFAULT_MAX_PAYLOAD_BYTES

from .conftest import MakeSession, Unchanged

BAD_TEXT = {
    "empty": "",
    "over-long": "x" * 201,
    "leading whitespace": " x",
    "trailing whitespace": "x ",
    "tab": "a\tb",
    "newline": "a\nb",
    "lone surrogate": "a\ud800b",
    "not a string": 7,
}

BAD_JSON = {
    "NaN": {"x": float("nan")},
    "infinity": {"x": float("inf")},
    "set": {"x": {1, 2}},
    "bytes": {"x": b"raw"},
    "custom object": {"x": object()},
    "list instead of dict": [1, 2],
    "string instead of dict": "text",
    "empty list instead of dict": [],
    "lone surrogate": {"x": "broken \ud800 text"},
    "lone surrogate key": {"\udfff": 1},
}


def _raises_naming(field: str, call: Callable[[], Any]) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        call()
    assert caught.value.field == field, caught.value
    assert field in str(caught.value)
    return caught.value


@pytest.mark.parametrize("bad", BAD_TEXT.values(), ids=BAD_TEXT.keys())
@pytest.mark.parametrize("field", ["agent_type", "user_id", "session_id", "parent_session_id"])
def test_create_rejects_bad_text_naming_the_field(manager: SessionManager, field: str, bad: Any) -> None:
    kwargs: dict[str, Any] = {"agent_type": "tutor", "user_id": "user-1", field: bad}
    _raises_naming(field, lambda: manager.create(**kwargs))
    assert len(manager.list()) == 0


@pytest.mark.parametrize("bad", BAD_JSON.values(), ids=BAD_JSON.keys())
@pytest.mark.parametrize("field", ["context", "metadata"])
def test_create_rejects_non_json_objects_naming_the_field(
    manager: SessionManager, field: str, bad: Any
) -> None:
    _raises_naming(field, lambda: manager.create("tutor", "user-1", **{field: bad}))
    assert len(manager.list()) == 0


@pytest.mark.parametrize("bad", BAD_JSON.values(), ids=BAD_JSON.keys())
def test_checkpoint_rejects_non_json_data(
    manager: SessionManager, in_state: MakeSession, unchanged: Unchanged, bad: Any
) -> None:
    sid = in_state().session_id
    with unchanged(sid):
        _raises_naming("data", lambda: manager.checkpoint(sid, "step", bad))


@pytest.mark.parametrize("bad", BAD_TEXT.values(), ids=BAD_TEXT.keys())
def test_checkpoint_rejects_bad_names(
    manager: SessionManager, in_state: MakeSession, unchanged: Unchanged, bad: Any
) -> None:
    sid = in_state().session_id
    with unchanged(sid):
        _raises_naming("name", lambda: manager.checkpoint(sid, bad, {}))


@pytest.mark.parametrize(
    ("field", "call"),
    [
        ("result", lambda m, sid: m.complete(sid, {"x": float("nan")})),
        ("details", lambda m, sid: m.fail(sid, "boom", {"x": {1}})),
        ("error", lambda m, sid: m.fail(sid, "")),
        ("context", lambda m, sid: m.update(sid, context={"x": b""})),
        ("metadata", lambda m, sid: m.update(sid, metadata=[1])),
        ("phase", lambda m, sid: m.heartbeat(sid, phase=" padded")),
        ("expect_silence", lambda m, sid: m.heartbeat(sid, expect_silence=0)),
        ("expect_silence", lambda m, sid: m.heartbeat(sid, expect_silence=-5)),
        ("expect_silence", lambda m, sid: m.heartbeat(sid, expect_silence=float("nan"))),
        ("expect_silence", lambda m, sid: m.heartbeat(sid, expect_silence=True)),
        ("expect_silence", lambda m, sid: m.heartbeat(sid, expect_silence=1e12)),
        ("worker_id", lambda m, sid: m.claim(sid, " ")),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_owner_writes_reject_bad_arguments_and_write_nothing(
    manager: SessionManager,
    in_state: MakeSession,
    unchanged: Unchanged,
    field: str,
    call: Callable[[SessionManager, str], Any],
) -> None:
    sid = in_state().session_id
    with unchanged(sid):
        _raises_naming(field, lambda: call(manager, sid))


def _nested(depth: int) -> dict[str, Any]:
    data: dict[str, Any] = {}
    inner = data
    for _ in range(depth):
        inner["a"] = {}
        inner = inner["a"]
    return data


def test_data_nested_beyond_recursion_is_rejected(
    manager: SessionManager, in_state: MakeSession, unchanged: Unchanged
) -> None:
    sid = in_state().session_id
    with unchanged(sid):
        _raises_naming("data", lambda: manager.checkpoint(sid, "deep", _nested(100_000)))


def test_deeply_nested_data_round_trips(manager: SessionManager, in_state: MakeSession) -> None:
    sid = in_state().session_id
    manager.checkpoint(sid, "deep", _nested(200))
    last = manager.last_checkpoint(sid)
    assert last is not None and last.data == _nested(200)


def test_payload_at_the_limit_is_accepted(manager: SessionManager, in_state: MakeSession) -> None:
    sid = in_state().session_id
    filler = "a" * (DEFAULT_MAX_PAYLOAD_BYTES - len('{"x":""}'))
    cp = manager.checkpoint(sid, "big", {"x": filler})
    assert manager.last_checkpoint(sid) == cp
    assert len(cp.data["x"]) == len(filler)


def test_payload_over_the_limit_raises_payload_too_large(
    manager: SessionManager, in_state: MakeSession, unchanged: Unchanged
) -> None:
    sid = in_state().session_id
    filler = "a" * (DEFAULT_MAX_PAYLOAD_BYTES - len('{"x":""}') + 1)
    with unchanged(sid), pytest.raises(PayloadTooLarge) as caught:
        manager.checkpoint(sid, "big", {"x": filler})
    assert (caught.value.field, caught.value.limit) == ("data", DEFAULT_MAX_PAYLOAD_BYTES)
    assert caught.value.size == DEFAULT_MAX_PAYLOAD_BYTES + 1


def test_payload_limit_counts_utf8_bytes_not_characters(
    manager: SessionManager, in_state: MakeSession, unchanged: Unchanged
) -> None:
    sid = in_state().session_id
    with unchanged(sid), pytest.raises(PayloadTooLarge):
        manager.checkpoint(sid, "big", {"x": "é" * (DEFAULT_MAX_PAYLOAD_BYTES // 2)})


def test_oversized_context_is_rejected_at_create(manager: SessionManager) -> None:
    with pytest.raises(PayloadTooLarge) as caught:
        manager.create("tutor", "user-1", context={"x": "a" * DEFAULT_MAX_PAYLOAD_BYTES})
    assert caught.value.field == "context"
    assert len(manager.list()) == 0


@pytest.mark.parametrize("bad", [0, -1, 10_001, True, "10", 1.5])
def test_listing_rejects_a_bad_limit(manager: SessionManager, bad: Any) -> None:
    _raises_naming("limit", lambda: manager.list(limit=bad))


@pytest.mark.parametrize("bad", [0, -1, 10_001, True, "10", 1.5])
def test_checkpoint_history_rejects_a_bad_limit(
    manager: SessionManager, in_state: MakeSession, bad: Any
) -> None:
    sid = in_state().session_id
    _raises_naming("limit", lambda: manager.checkpoints(sid, limit=bad))


@pytest.mark.parametrize("bad", [-1, True, "1", 1.0])
def test_checkpoint_history_rejects_a_bad_after_seq(
    manager: SessionManager, in_state: MakeSession, bad: Any
) -> None:
    sid = in_state().session_id
    _raises_naming("after_seq", lambda: manager.checkpoints(sid, after_seq=bad))


FORGED_CURSORS = {
    "not base64": "garbage!!",
    "no colon": "bm9wZQ",
    "not utf-8": "abc",
    "empty": "",
    "beyond any date": base64.urlsafe_b64encode(b"9999999999999999999999999:x").decode(),
    "NUL in id": base64.urlsafe_b64encode(b"12:\x00").decode(),
}


@pytest.mark.parametrize("bad", FORGED_CURSORS.values(), ids=FORGED_CURSORS.keys())
def test_listing_rejects_a_cursor_it_did_not_hand_out(manager: SessionManager, bad: str) -> None:
    manager.create("tutor", "user-1")
    _raises_naming("cursor", lambda: manager.list(cursor=bad))


@pytest.mark.parametrize("bad", ["running", "ACTIVE ", 3])
def test_listing_rejects_an_unknown_state(manager: SessionManager, bad: Any) -> None:
    _raises_naming("state", lambda: manager.list(state=bad))


def test_purge_rejects_an_unknown_state(manager: SessionManager, in_state: MakeSession) -> None:
    in_state("completed")
    _raises_naming("state", lambda: manager.purge(timedelta(0), states=["finished"]))
    _raises_naming("state", lambda: manager.purge(timedelta(0), states=[None]))
    assert len(manager.list()) == 1


def test_import_rejects_an_unknown_conflict_policy(manager: SessionManager) -> None:
    _raises_naming("on_conflict", lambda: manager.import_sessions(io.StringIO(""), on_conflict="replace"))


@pytest.mark.parametrize("field", ["no_heartbeat_for", "paused_for"])
def test_stale_queries_reject_durations_beyond_any_calendar(manager: SessionManager, field: str) -> None:
    _raises_naming(field, lambda: manager.stale(**{field: 1e12}))


BAD_COUNTERS = {"string": "1", "float": 1.0, "bool": True, "zero": 0, "beyond 64 bits": 2**70}
COUNTED_WRITES: dict[str, Callable[[SessionManager, str, Any], Any]] = {
    "checkpoint": lambda m, sid, v: m.checkpoint(sid, "step", epoch=v),
    "heartbeat": lambda m, sid, v: m.heartbeat(sid, epoch=v),
    "pause": lambda m, sid, v: m.pause(sid, epoch=v),
    "complete": lambda m, sid, v: m.complete(sid, epoch=v),
    "fail": lambda m, sid, v: m.fail(sid, "x", epoch=v),
    "update": lambda m, sid, v: m.update(sid, context={}, epoch=v),
}


@pytest.mark.parametrize("bad", BAD_COUNTERS.values(), ids=BAD_COUNTERS.keys())
@pytest.mark.parametrize("write", sorted(COUNTED_WRITES))
def test_an_epoch_must_be_a_positive_64_bit_integer(
    manager: SessionManager, in_state: MakeSession, unchanged: Unchanged, write: str, bad: Any
) -> None:
    sid = in_state().session_id
    with unchanged(sid):
        _raises_naming("epoch", lambda: COUNTED_WRITES[write](manager, sid, bad))


@pytest.mark.parametrize("bad", BAD_COUNTERS.values(), ids=BAD_COUNTERS.keys())
def test_an_expected_version_must_be_a_positive_64_bit_integer(
    manager: SessionManager, in_state: MakeSession, unchanged: Unchanged, bad: Any
) -> None:
    sid = in_state().session_id
    with unchanged(sid):
        _raises_naming("expected_version", lambda: manager.pause(sid, expected_version=bad))


def test_after_seq_beyond_64_bits_is_rejected(manager: SessionManager, in_state: MakeSession) -> None:
    sid = in_state().session_id
    _raises_naming("after_seq", lambda: manager.checkpoints(sid, after_seq=2**70))


def test_batched_beats_are_validated_like_single_ones(
    manager: SessionManager, in_state: MakeSession, unchanged: Unchanged
) -> None:
    sid = in_state().session_id
    with unchanged(sid):
        _raises_naming("epoch", lambda: manager.heartbeats([Beat(sid), Beat(sid, 2**70)]))
        _raises_naming("expect_silence", lambda: manager.heartbeats([Beat(sid, expect_silence=-1)]))
        _raises_naming("session_id", lambda: manager.heartbeats([Beat("")]))


@pytest.mark.parametrize(
    "bad", [5, "5", None, timedelta(seconds=-1), timedelta(days=100 * 366 + 1)], ids=repr
)
def test_purge_needs_a_sensible_age_or_cutoff(
    manager: SessionManager, in_state: MakeSession, bad: Any
) -> None:
    in_state("completed")
    _raises_naming("older_than", lambda: manager.purge(bad))
    assert len(manager.list()) == 1


def test_purge_reads_a_naive_cutoff_as_utc(
    manager: SessionManager, in_state: MakeSession, clock: ManualClock
) -> None:
    in_state("completed")
    clock.advance(10)
    assert manager.purge(clock.now().replace(tzinfo=None)) == 1


def test_validation_errors_are_value_errors(manager: SessionManager) -> None:
    with pytest.raises(ValueError):
        manager.create("", "user-1")
