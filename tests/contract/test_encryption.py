"""Encryption at rest: with a codec, payloads are sealed before any store sees them and read back
exactly; the store's raw rows hold no plaintext; a wrong key is a typed error, never garbage."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tether import DecryptionError, PayloadTooLarge, Policies, SessionManager, State, ValidationError
from tether.core.sealing import FernetCodec
from tether.stores import Store

from .conftest import ALL_CHECKPOINTS, front_door

KEY, OTHER_KEY = FernetCodec.generate_key(), FernetCodec.generate_key()
MARKER = "tether-plaintext-marker-7f3a"
# What JSON columns must give back exactly: key order, big and small numbers, NUL, non-ASCII.
TRICKY: dict[str, Any] = {"z": 1, "a": [1.5, 10**20, -0.0], "nul": "a\u0000b", "é": {"y": None, "b": True}}


@pytest.fixture(params=["sync", "async"])
def sealed(
    request: pytest.FixtureRequest, store: Store, store_url: str, policies: Policies
) -> Iterator[SessionManager]:
    yield from front_door(request.param, store, store_url, policies, codec=FernetCodec(KEY))


def _with_marker_everywhere(manager: SessionManager) -> str:
    sid = manager.create(
        "tutor", "user-1", context={"note": MARKER, **TRICKY}, metadata={"tag": MARKER}
    ).session_id
    manager.checkpoint(sid, "step", {"said": MARKER, **TRICKY})
    manager.fail(sid, "boom", {"why": MARKER})
    return sid


def test_encrypted_payloads_read_back_exactly(sealed: SessionManager) -> None:
    sid = _with_marker_everywhere(sealed)
    session = sealed.get(sid)
    assert json.dumps(session.context) == json.dumps({"note": MARKER, **TRICKY})
    assert session.metadata == {"tag": MARKER}
    assert session.failure is not None and session.failure.details == {"why": MARKER}
    history = sealed.checkpoints(sid)
    assert json.dumps(history[0].data) == json.dumps({"said": MARKER, **TRICKY})
    assert history[1].data == {"error": "boom", "details": {"why": MARKER}}
    assert sealed.last_checkpoint(sid, "step") == history[0]
    assert [s.context for s in sealed.list()] == [session.context]
    claimed = sealed.claim(sid)
    assert claimed.context == session.context and claimed.state is State.ACTIVE


def test_the_store_holds_no_plaintext_of_a_payload(
    sealed: SessionManager, store: Store, store_url: str, tmp_path: Path
) -> None:
    sid = _with_marker_everywhere(sealed)
    forked = sealed.fork(sid, 1).session_id
    sealed.update(forked, metadata={"tag": MARKER, "again": MARKER})
    raw = raw_contents(store, store_url, tmp_path)
    assert sid.encode() in raw  # the dump did read the rows: ids stay in clear
    assert MARKER.encode() not in raw


def test_a_wrong_key_is_a_typed_error(
    sealed: SessionManager, store: Store, store_url: str, policies: Policies
) -> None:
    sid = _with_marker_everywhere(sealed)
    for wrong in front_door("sync", store, store_url, policies, codec=FernetCodec(OTHER_KEY)):
        with pytest.raises(DecryptionError) as caught:
            wrong.get(sid)
        assert (caught.value.session_id, caught.value.field) == (sid, "context")
        with pytest.raises(DecryptionError):
            wrong.checkpoints(sid)
        with pytest.raises(DecryptionError):
            wrong.list()


def test_keys_rotate_new_first_old_still_read(
    sealed: SessionManager, store: Store, store_url: str, policies: Policies
) -> None:
    old = _with_marker_everywhere(sealed)
    for rotated in front_door("sync", store, store_url, policies, codec=FernetCodec(OTHER_KEY, KEY)):
        assert rotated.get(old).metadata == {"tag": MARKER}
        new = rotated.create("tutor", "user-2", context={"fresh": True}).session_id
    for only_new in front_door("sync", store, store_url, policies, codec=FernetCodec(OTHER_KEY)):
        assert only_new.get(new).context == {"fresh": True}


def test_without_a_key_payloads_stay_sealed_and_export_refuses(
    sealed: SessionManager, store: Store, store_url: str, policies: Policies
) -> None:
    sid = _with_marker_everywhere(sealed)
    for keyless in front_door("sync", store, store_url, policies):
        assert MARKER not in json.dumps(keyless.get(sid).context)
        with pytest.raises(ValidationError) as caught:
            keyless.export(io.StringIO())
        assert caught.value.field == "decrypt"


def test_export_writes_plaintext_only_when_asked_to_decrypt(
    sealed: SessionManager, store: Store, store_url: str, policies: Policies
) -> None:
    sid = _with_marker_everywhere(sealed)
    with pytest.raises(ValidationError) as caught:
        sealed.export(io.StringIO())
    assert caught.value.field == "decrypt"
    out = io.StringIO()
    assert sealed.export(out, decrypt=True) == 1
    line = json.loads(out.getvalue())
    assert line["context"]["note"] == MARKER and line["session_id"] == sid
    history = sealed.checkpoints(sid, limit=ALL_CHECKPOINTS)
    sealed.delete(sid)
    assert sealed.import_sessions(io.StringIO(out.getvalue())) == 1
    assert sealed.checkpoints(sid, limit=ALL_CHECKPOINTS) == history


def test_size_limits_apply_to_the_plaintext(store: Store, store_url: str, policies: Policies) -> None:
    for small in front_door(
        "sync", store, store_url, policies, codec=FernetCodec(KEY), max_payload_bytes=100
    ):
        sid = small.create("tutor", "user-1").session_id
        fits = {"x": "a" * (100 - len('{"x":""}'))}
        assert small.checkpoint(sid, "full", fits).data == fits
        with pytest.raises(PayloadTooLarge):
            small.checkpoint(sid, "over", {"x": fits["x"] + "a"})


def test_rows_written_before_encryption_still_read(store: Store, store_url: str, policies: Policies) -> None:
    for plain in front_door("sync", store, store_url, policies):
        sid = plain.create("tutor", "user-1", context={"old": 1}).session_id
        plain.checkpoint(sid, "old", {"n": 1})
    for sealed in front_door("sync", store, store_url, policies, codec=FernetCodec(KEY)):
        assert sealed.get(sid).context == {"old": 1}
        assert sealed.checkpoint(sid, "new", {"n": 2}).seq == 2
        assert [c.data for c in sealed.checkpoints(sid)] == [{"n": 1}, {"n": 2}]


def raw_contents(store: Store, store_url: str, tmp_path: Path) -> bytes:
    """Everything the store (and Redis, for the liveness store) holds, as bytes, read around Tether."""
    inner = getattr(store, "inner", None)
    if inner is not None:  # RedisLivenessStore: its Redis keys, then the store it wraps
        client = store.redis.client  # type: ignore[attr-defined]
        keys = list(client.scan_iter(match=f"{store.redis.prefix}:*"))  # type: ignore[attr-defined]
        dumped = b"".join(client.dump(key) or b"" for key in keys)
        return dumped + raw_contents(inner, inner.url, tmp_path)
    if store_url.startswith("sqlite"):
        return b"".join(path.read_bytes() for path in tmp_path.glob("tether.db*"))
    if store_url.startswith("postgres"):
        import psycopg

        with psycopg.connect(store_url) as conn:
            rows = conn.execute("SELECT s::text FROM sessions s UNION ALL SELECT c::text FROM checkpoints c")
            return "\n".join(row[0] for row in rows).encode()
    return repr(vars(store)).encode()  # memory: its dicts are all it has
