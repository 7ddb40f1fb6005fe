"""Leases in Redis: one small hash per session plus two sorted sets (by lease expiry, by soft deadline).

    {prefix}:s:{session_id}   hash: version epoch state agent_type timeout suspect_after
                                    phase last_heartbeat suspect_at lease   (times in microseconds)
    {prefix}:expiry           zset: active session -> lease expiry
    {prefix}:suspect          zset: active session -> soft deadline
    {prefix}:rebuilt          set once every live session of the store has been copied in; a Redis
                              restarted empty (or replaced) lacks it, so the store copies them again

Every change is a Lua script (`scripts/*.lua`), so a heartbeat's fencing check and its write are
one atomic step, timed by the Redis server's clock: clients' clocks never matter. This module only
moves values in and out of Redis; `redis_liveness` decides what they mean for the store.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from importlib import resources

from tether.core.errors import ConfigurationError, StoreUnavailable
from tether.core.model import Session, State
from tether.stores.base import Beat, from_micros, to_micros

BATCH = 2000  # beats per script call: big enough to amortise the round trip, short enough not to stall Redis
ENDED_TTL = 3600  # seconds an ended session's hash stays, answering late heartbeats precisely


class Code:
    """What the heartbeat script says about one beat."""

    APPLIED, UNKNOWN, WRONG_EPOCH, EXPIRED, NOT_LIVE = range(5)


@dataclass(frozen=True, slots=True)
class BeatResult:
    code: int
    epoch: int
    state: str


APPLIED = BeatResult(Code.APPLIED, 0, "")


@dataclass(frozen=True, slots=True)
class Lease:
    """A session's liveness as Redis has it, at the session version it was mirrored from."""

    created_at: datetime  # which session of that id: a re-created store may reuse ids
    version: int
    epoch: int
    state: str
    phase: str | None
    last_heartbeat: datetime
    suspect_at: datetime
    lease_expires_at: datetime


def _script(name: str) -> str:
    return resources.files("tether.stores.redis").joinpath("scripts", name).read_text()


class RedisLeases:
    def __init__(self, url: str, prefix: str, timeout: float = 2.0) -> None:
        try:
            import redis
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ConfigurationError("Redis support is not installed: pip install 'tether[redis]'") from exc
        self.url, self.prefix = url, prefix
        self._errors: tuple[type[Exception], ...] = (redis.RedisError,)
        try:
            self.client = redis.Redis.from_url(
                url, socket_timeout=timeout, socket_connect_timeout=timeout, decode_responses=True
            )
        except ValueError as exc:
            raise ConfigurationError(f"bad Redis URL {url!r}: {exc}") from exc
        self._beat = self.client.register_script(_script("heartbeat.lua"))
        self._mirror = self.client.register_script(_script("mirror.lua"))
        self._rebuilt = self.client.register_script(_script("rebuilt.lua"))

    @contextmanager
    def _calling(self, what: str) -> Iterator[None]:
        """Redis errors leave as StoreUnavailable: the heartbeat (or read) did not happen."""
        try:
            yield
        except self._errors as exc:
            raise StoreUnavailable(f"Redis at {self.url} failed during {what}: {exc}") from exc

    def key(self, session_id: str) -> str:
        return f"{self.prefix}:s:{session_id}"

    def now(self) -> datetime:
        with self._calling("TIME"):
            seconds, micros = self.client.time()
        return from_micros(int(seconds) * 1_000_000 + int(micros))

    def beat(self, beats: Sequence[Beat], now: datetime | None = None) -> list[BeatResult]:
        """One Lua call per BATCH beats; JSON both ways (packing thousands of arguments costs more).
        `now` (a test clock's time) replaces the Redis clock."""
        at = "" if now is None else str(to_micros(now))
        out: list[BeatResult] = []
        for start in range(0, len(beats), BATCH):
            batch = [[b.session_id, b.epoch, b.phase, b.expect_silence] for b in beats[start : start + BATCH]]
            with self._calling("heartbeat"):
                answer = self._beat(args=[self.prefix, json.dumps(batch), at])
            out += [APPLIED if r == 0 else BeatResult(*r) for r in json.loads(answer)]
        return out

    def mirror(self, session: Session, renews: bool) -> None:
        """Copy owner, epoch and state (and the lease if `renews`) of a session just written."""
        with self._calling("mirror"):
            self._mirror(args=_mirror_args(self.prefix, session, renews))

    def mirror_many(self, sessions: Sequence[Session]) -> None:
        """`mirror` (with the lease) of many sessions in one round trip. A session Redis already
        holds at that version keeps its lease, which heartbeats may have made newer."""
        if not sessions:
            return
        with self._calling("mirror"):
            pipe = self.client.pipeline(transaction=False)
            for session in sessions:
                self._mirror(args=_mirror_args(self.prefix, session, True), client=pipe)
            pipe.execute()

    def is_rebuilt(self) -> bool:
        with self._calling("read"):
            return bool(self.client.exists(f"{self.prefix}:rebuilt"))

    def start_rebuild(self) -> str:
        token = uuid.uuid4().hex
        with self._calling("rebuild"):
            self.client.set(f"{self.prefix}:rebuilding", token)
        return token

    def finish_rebuild(self, token: str) -> bool:
        """Mark the rebuild done, unless another began since or Redis restarted meanwhile."""
        keys = [f"{self.prefix}:rebuilding", f"{self.prefix}:rebuilt"]
        with self._calling("rebuild"):
            return bool(self._rebuilt(keys=keys, args=[token]))

    def leases(self, session_ids: Sequence[str]) -> dict[str, Lease]:
        fields = ("version", "epoch", "state", "phase", "last_heartbeat", "suspect_at", "lease", "created")
        with self._calling("read"):
            pipe = self.client.pipeline(transaction=False)
            for sid in session_ids:
                pipe.hmget(self.key(sid), fields)
            rows = pipe.execute()
        return {sid: _lease(row) for sid, row in zip(session_ids, rows, strict=True) if row[0] is not None}

    def due(self, which: str, until: datetime, limit: int) -> tuple[list[str], bool]:
        """Sessions whose lease expiry (`expiry`) or soft deadline (`suspect`) is at or before `until`,
        and whether Redis is rebuilt (if not, the answer misses the sessions it lost)."""
        with self._calling("read"):
            pipe = self.client.pipeline(transaction=False)
            pipe.zrangebyscore(f"{self.prefix}:{which}", "-inf", to_micros(until), start=0, num=limit)
            pipe.exists(f"{self.prefix}:rebuilt")
            found, rebuilt = pipe.execute()
        return [str(sid) for sid in found], bool(rebuilt)

    def forget(self, session_ids: Sequence[str]) -> None:
        if not session_ids:
            return
        with self._calling("delete"):
            pipe = self.client.pipeline(transaction=True)
            pipe.delete(*(self.key(sid) for sid in session_ids))
            pipe.zrem(f"{self.prefix}:expiry", *session_ids)
            pipe.zrem(f"{self.prefix}:suspect", *session_ids)
            pipe.execute()

    def close(self) -> None:
        self.client.close()


def _mirror_args(prefix: str, session: Session, renews: bool) -> list[str | int]:
    lease = session.lease_expires_at or session.last_heartbeat
    suspect = session.suspect_at or lease
    return [
        prefix,
        session.session_id,
        session.version,
        session.epoch,
        session.state.value,
        session.agent_type,
        repr(session.heartbeat_timeout),
        repr(session.suspect_after),
        "1" if renews else "0",
        session.phase or "",
        to_micros(session.last_heartbeat),
        to_micros(suspect),
        to_micros(lease),
        ENDED_TTL,
        to_micros(session.created_at),
    ]


def _lease(row: Sequence[str | None]) -> Lease:
    version, epoch, state, phase, beat, suspect, lease, created = row
    return Lease(
        created_at=from_micros(int(created or 0)),
        version=int(version or 0),
        epoch=int(epoch or 0),
        state=state or "",
        phase=phase or None,
        last_heartbeat=from_micros(int(beat or 0)),
        suspect_at=from_micros(int(suspect or 0)),
        lease_expires_at=from_micros(int(lease or 0)),
    )


LIVE = frozenset({State.ACTIVE.value, State.PAUSED.value})
