"""Liveness in Redis, durability in the store: a Store that wraps another one.

    store = RedisLivenessStore(open_store("postgresql://…"), "redis://localhost:6379/0")
    SessionManager(store)            # or SessionManager(url, redis_url=…), or TETHER_REDIS_URL

Heartbeats are the hot path, and the one write that needs no durability beyond the lease itself: they
go to Redis only (`redis_leases`, one Lua call per batch, the Redis clock). Everything else goes to
the wrapped store first and is then mirrored to Redis, so owner, epoch and state are the store's and
fencing stays exact:
- `create` and every `apply` (claim, pause, resume, complete, fail, time out) mirror the session's new
  version, epoch and state; Redis ignores a mirror older than what it holds.
- Reads overlay Redis's lease on the store's row when both are at the same version; a claim or a
  supervisor therefore decides on the live lease, and a heartbeat refused for an expired lease stays
  refused until a transition renews it (the same rule as `Store.heartbeat`).
- Expired and suspect sessions are read from Redis sorted sets (ZRANGEBYSCORE), not from the store.
- A flusher thread copies leases back to the store every `flush_interval` seconds and on close, so
  listings and `no_heartbeat_for` queries are at most that stale.
- The store stays the source of truth: Redis marks itself rebuilt once every live session of the
  store has been copied in. A Redis that restarted empty (or was replaced) lacks the mark; the next
  expiry scan, claim, the flusher or a new manager sees that and copies the live sessions again,
  leases as last flushed, so sessions whose agent died meanwhile are found again.
If Redis is unreachable, everything but heartbeats carries on with the store alone: writes go to the
store (their mirrors are repaired later), reads and expiry scans use the store's leases (as fresh as
the last flush). Heartbeats raise StoreUnavailable, or with `fallback="store"` go to the store.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import datetime

from tether import lifecycle
from tether.core.clock import SystemClock
from tether.core.errors import (
    ConfigurationError,
    ConflictError,
    InvalidTransition,
    LeaseLost,
    NotFound,
    StoreUnavailable,
    TetherError,
)
from tether.core.keys import ApiKey
from tether.core.model import (
    LIVE_STATES,
    Checkpoint,
    NewCheckpoint,
    Page,
    Session,
    SessionCount,
    SessionFilter,
    State,
)
from tether.core.retention import RetentionRule
from tether.lifecycle import Write
from tether.stores.base import Beat, Store, claim_order, decode_cursor, page_of, to_micros
from tether.stores.redis.leases import LIVE, BeatResult, Code, Lease, RedisLeases

logger = logging.getLogger(__name__)

FALLBACKS = ("raise", "store")
OUTAGE_LOG_EVERY = 10.0  # seconds between warnings that Redis is unreachable
PAGE = 500


class RedisLivenessStore(Store):
    def __init__(
        self,
        inner: Store,
        redis_url: str,
        *,
        prefix: str | None = None,
        flush_interval: float = 5.0,
        fallback: str = "raise",
    ) -> None:
        if fallback not in FALLBACKS:
            raise ConfigurationError(f"fallback must be one of {FALLBACKS}, got {fallback!r}")
        super().__init__(inner.clock)
        self._test_clock = not isinstance(inner.clock, SystemClock)
        self.inner, self.url, self.fallback = inner, inner.url, fallback
        self.redis = RedisLeases(redis_url, prefix or default_prefix(inner.url))
        self._dirty: set[str] = set()  # beaten since the last flush
        self._unsynced: set[str] = set()  # a mirror failed: Redis may be behind the store
        self._outage_logged = -OUTAGE_LOG_EVERY
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._flusher = threading.Thread(
            target=self._flush_every, args=(flush_interval,), name="tether-redis-flush", daemon=True
        )
        self._rebuild_if_lost()
        self._flusher.start()

    def now(self) -> datetime:
        """The Redis server's clock: leases are set and judged by it alone (or by an injected test
        clock, which also times the heartbeats, as PostgreSQL's store does with `now()`)."""
        if self._test_clock:
            return self.clock.now()
        try:
            return self.redis.now()
        except StoreUnavailable as exc:
            self._without_redis(exc)
            return self.inner.now()

    # -- reads: the store's rows with Redis's leases ----------------------------------------
    def get(self, session_id: str) -> Session:
        return self._overlay([self.inner.get(session_id)])[0]

    def query(self, where: SessionFilter, limit: int, cursor: str | None = None) -> Page[Session]:
        try:
            if where.lease_expired_at is not None:
                return self._query_due(where, "expiry", where.lease_expired_at, limit, cursor)
            if where.suspect_at_or_before is not None:
                return self._query_due(where, "suspect", where.suspect_at_or_before, limit, cursor)
        except StoreUnavailable as exc:
            self._without_redis(exc)
            return self.inner.query(where, limit, cursor)
        page = self.inner.query(where, limit, cursor)
        # The store's heartbeats are older than Redis's, so re-checking the overlaid rows is exact.
        return Page([s for s in self._overlay(list(page)) if lifecycle.matches(s, where)], page.next_cursor)

    def checkpoints(
        self, session_id: str, after_seq: int = 0, limit: int = 100, name: str | None = None
    ) -> list[Checkpoint]:
        return self.inner.checkpoints(session_id, after_seq, limit, name)

    def last_checkpoint(self, session_id: str, name: str | None = None) -> Checkpoint | None:
        return self.inner.last_checkpoint(session_id, name)

    def last_checkpoint_of(self, session_id: str, names: Sequence[str]) -> Checkpoint | None:
        return self.inner.last_checkpoint_of(session_id, names)

    def newest_checkpoints(
        self, session_id: str, limit: int, before_seq: int | None = None
    ) -> list[Checkpoint]:
        return self.inner.newest_checkpoints(session_id, limit, before_seq)

    def claimable(self, agent_types: frozenset[str] | None, limit: int) -> list[Session]:
        """Expired leases from Redis, plus the store's recoverably failed sessions (the store's
        own idea of which leases expired is stale)."""
        try:
            due = self._load(self._due("expiry", self.now(), limit * 4))
        except StoreUnavailable as exc:
            self._without_redis(exc)
            return self.inner.claimable(agent_types, limit)
        expired = [
            s for s in due if s.state is State.ACTIVE and (agent_types is None or s.agent_type in agent_types)
        ]
        failed = [s for s in self.inner.claimable(agent_types, limit) if s.state is State.FAILED]
        found = [*expired, *failed]
        found.sort(key=claim_order)
        return found[:limit]

    # -- writes ------------------------------------------------------------------------------
    def create(self, session: Session, checkpoints: Sequence[NewCheckpoint] = ()) -> Session:
        created = self.inner.create(session, checkpoints)
        self._mirror(created, renews=True)
        return created

    def append(self, session_id: str, checkpoint: NewCheckpoint, epoch: int | None) -> Checkpoint:
        return self.inner.append(session_id, checkpoint, epoch)  # fenced by the store's epoch

    def apply(self, write: Write) -> Session:
        # The decision was made on Redis's (newer) lease, and only this store's flush (itself a
        # version compare-and-set) otherwise writes the store's liveness columns: write them all.
        after = self.inner.apply(replace(write, renews_lease=True))
        self._mirror(after, renews=write.renews_lease)
        return self._overlay([after])[0]

    def heartbeat(self, beats: Sequence[Beat]) -> list[TetherError | None]:
        try:
            results = self.redis.beat(beats, self._manual_now())
        except StoreUnavailable:
            if self.fallback == "store":
                logger.warning("Redis unreachable: %d heartbeats go to the store", len(beats))
                return self.inner.heartbeat(beats)
            raise
        stale = [i for i, (b, r) in enumerate(zip(beats, results, strict=True)) if _redis_behind(b, r)]
        if stale:  # Redis never saw this session, or missed its takeover: copy it and beat again
            self._resync([beats[i].session_id for i in stale])
            retries = self.redis.beat([beats[i] for i in stale], self._manual_now())
            for i, retried in zip(stale, retries, strict=True):
                results[i] = retried
        with self._lock:
            self._dirty.update(
                b.session_id for b, r in zip(beats, results, strict=True) if r.code == Code.APPLIED
            )
        errors = [_error(b, r) for b, r in zip(beats, results, strict=True)]
        for i, result in enumerate(results):
            if result.code == Code.NOT_LIVE:  # ended, as Redis last heard; or purged from the store since
                errors[i] = self._gone_or(beats[i].session_id, errors[i])
        return errors

    def _gone_or(self, session_id: str, error: TetherError | None) -> TetherError | None:
        """NotFound (and the hash forgotten) if the store no longer has the session, else `error`."""
        try:
            self.inner.get(session_id)
        except NotFound as gone:
            self.redis.forget([session_id])
            return gone
        return error

    def delete(self, session_id: str) -> None:
        self.inner.delete(session_id)
        try:
            self.redis.forget([session_id])
        except StoreUnavailable as exc:  # the expiry scan drops ids the store no longer has
            self._without_redis(exc)

    def purge(self, ended_before: datetime, states: frozenset[State]) -> int:
        """Live sessions are purged by their last heartbeat, so the store first gets the newer ones
        Redis has, and Redis forgets the ones purged. Ended sessions' hashes expire by themselves (a
        heartbeat for one the store no longer has is NotFound, as from the store)."""
        silent = [
            sid for state in states & LIVE_STATES for sid in self._flush_heard_since(ended_before, state)
        ]
        purged = self.inner.purge(ended_before, states)
        self.redis.forget(silent)
        return purged

    def fork(self, session: Session, source_id: str, at_seq: int) -> Session:
        created = self.inner.fork(session, source_id, at_seq)
        self._mirror(created, renews=True)
        return created

    def retirable(self, rule: RetentionRule, limit: int) -> list[str]:
        return self.inner.retirable(rule, limit)

    def retire(self, rule: RetentionRule, limit: int) -> list[str]:
        removed = self.inner.retire(rule, limit)
        self.redis.forget(removed)
        return removed

    def erase_user(self, user_id: str) -> int:
        theirs = self._ids(SessionFilter(user_id=user_id))
        erased = self.inner.erase_user(user_id)
        self.redis.forget(theirs)
        return erased

    def add_api_key(self, key: ApiKey) -> None:
        self.inner.add_api_key(key)

    def get_api_key(self, key_id: str) -> ApiKey | None:
        return self.inner.get_api_key(key_id)

    def list_api_keys(self) -> list[ApiKey]:
        return self.inner.list_api_keys()

    def revoke_api_key(self, key_id: str, at: datetime) -> bool:
        return self.inner.revoke_api_key(key_id, at)

    def count_sessions(self, now: datetime, user_id: str | None = None) -> list[SessionCount]:
        """The store's counts: liveness as of the last flush of Redis's leases (one flush interval
        behind at most)."""
        return self.inner.count_sessions(now, user_id)

    def migrate(self) -> int:
        return self.inner.migrate()

    def close(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self._flusher.join()
        try:
            self.flush()
        except TetherError:
            logger.exception("final flush of Redis leases to the store failed")
        self.redis.close()
        self.inner.close()

    # -- flushing leases back to the store ---------------------------------------------------
    def flush(self) -> int:
        """Copy the leases beaten since the last flush into the store; returns how many."""
        with self._lock:
            dirty, self._dirty = self._dirty, set()
            unsynced, self._unsynced = self._unsynced, set()
        if unsynced:
            self._resync(sorted(unsynced))
        leases = self.redis.leases(sorted(dirty))
        return sum(self._flush_one(sid, lease) for sid, lease in leases.items())

    def _flush_one(self, session_id: str, lease: Lease) -> bool:
        try:
            current = self.inner.get(session_id)
        except NotFound:
            return False
        mirrored = (current.created_at, current.version, current.epoch)
        if mirrored != (lease.created_at, lease.version, lease.epoch) or current.is_ended:
            return False  # a transition got there first; it carries its own lease
        if lease.last_heartbeat <= current.last_heartbeat:
            return False
        try:
            self.inner.apply(Write("heartbeat", current, _leased(current, lease), None, renews_lease=True))
        except ConflictError:
            return False
        return True

    def _flush_heard_since(self, before: datetime, state: State) -> list[str]:
        """Flush the Redis leases of the sessions the store thinks silent since `before`; returns
        the ones still silent since then."""
        for page in self._pages(SessionFilter(state=state, heartbeat_before=before)):
            for sid, lease in self.redis.leases([s.session_id for s in page]).items():
                self._flush_one(sid, lease)
        return self._ids(SessionFilter(state=state, heartbeat_before=before))

    def _pages(self, where: SessionFilter) -> Iterator[Page[Session]]:
        cursor: str | None = None
        while True:
            page = self.inner.query(where, PAGE, cursor)
            yield page
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def _ids(self, where: SessionFilter) -> list[str]:
        return [s.session_id for page in self._pages(where) for s in page]

    def _flush_every(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self._rebuild_if_lost()
            try:
                self.flush()
            except TetherError:
                logger.exception("flushing Redis leases to the store failed; retrying")

    # -- internals ---------------------------------------------------------------------------
    def _without_redis(self, exc: StoreUnavailable) -> None:
        """Carry on with the store's own (flushed) leases; said once per OUTAGE_LOG_EVERY seconds,
        not on every call of an outage."""
        now = time.monotonic()
        if now - self._outage_logged >= OUTAGE_LOG_EVERY:
            self._outage_logged = now
            logger.warning("Redis unreachable; leases come from the store: %s", exc)

    # -- rebuilding Redis from the store -----------------------------------------------------
    def _due(self, which: str, until: datetime, limit: int) -> list[str]:
        found, rebuilt = self.redis.due(which, until, limit)
        if rebuilt:
            return found
        self._rebuild()
        return self.redis.due(which, until, limit)[0]

    def _rebuild_if_lost(self) -> None:
        """At start and on each flush: rebuild a Redis that lost its data (if it is reachable)."""
        try:
            if not self.redis.is_rebuilt():
                self._rebuild()
        except StoreUnavailable as exc:
            logger.warning("Redis unreachable; its leases will be rebuilt when it is back: %s", exc)
        except TetherError:
            logger.exception("rebuilding Redis from the store failed; retrying on the next flush")

    def _rebuild(self) -> None:
        """Copy every live session of the store into Redis (keeping the newer leases Redis has),
        then mark it rebuilt. Concurrent rebuilds by other processes are harmless."""
        token = self.redis.start_rebuild()
        copied = 0
        for state in (State.ACTIVE, State.PAUSED):
            cursor: str | None = None
            while True:
                page = self.inner.query(SessionFilter(state=state), PAGE, cursor)
                self.redis.mirror_many(list(page))
                copied += len(page)
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
        if self.redis.finish_rebuild(token):
            logger.warning("Redis had lost its leases: rebuilt %d live sessions from the store", copied)

    def _manual_now(self) -> datetime | None:
        return self.clock.now() if self._test_clock else None

    def _mirror(self, session: Session, renews: bool) -> None:
        """After a store write: the write happened, so a Redis failure is remembered and repaired
        on the next flush (or heartbeat) instead of being reported as a failed write."""
        try:
            self.redis.mirror(session, renews)
        except StoreUnavailable:
            logger.warning(
                "Redis missed the %s of session %s; will resync", session.state, session.session_id
            )
            with self._lock:
                self._unsynced.add(session.session_id)

    def _resync(self, session_ids: Sequence[str]) -> None:
        for sid in session_ids:
            try:
                self.redis.mirror(self.inner.get(sid), renews=True)
            except NotFound:
                continue

    def _overlay(self, sessions: list[Session]) -> list[Session]:
        if not sessions:
            return sessions
        try:
            leases = self.redis.leases([s.session_id for s in sessions])
        except StoreUnavailable as exc:
            self._without_redis(exc)
            return sessions
        return [_with_lease(s, leases.get(s.session_id)) for s in sessions]

    def _load(self, session_ids: Sequence[str]) -> list[Session]:
        """Sessions by id, overlaid; ids the store no longer has are dropped from Redis (safe: the
        key prefix belongs to this store alone, see `default_prefix`)."""
        found, gone = [], []
        for sid in session_ids:
            try:
                found.append(self.inner.get(sid))
            except NotFound:
                gone.append(sid)
        self.redis.forget(gone)
        return self._overlay(found)

    def _query_due(
        self, where: SessionFilter, which: str, until: datetime, limit: int, cursor: str | None
    ) -> Page[Session]:
        """Expired / suspect listings, from a sorted set; the due set is small, so it is read
        whole and paginated here in the store's keyset order."""
        rows = [s for s in self._load(self._due(which, until, 100_000)) if lifecycle.matches(s, where)]
        rows.sort(key=lambda s: (to_micros(s.created_at), s.session_id), reverse=True)
        if cursor is not None:
            after = decode_cursor(cursor)
            rows = [s for s in rows if (to_micros(s.created_at), s.session_id) < after]
        return page_of(rows[: limit + 1], limit)


def default_prefix(url: str) -> str:
    """Keys of one store, apart from any other store's on the same Redis: a digest of the store's URL
    (every process of a fleet names its store by the same URL). A memory store is private to its
    process, so its keys are too."""
    identity = uuid.uuid4().hex if url.startswith("memory:") else url
    return f"tether:{hashlib.sha256(identity.encode()).hexdigest()[:16]}"


def _with_lease(session: Session, lease: Lease | None) -> Session:
    """The newer of the two leases granted at the session's epoch: Redis's, unless a transition
    renewed the store's and its mirror has not reached Redis yet."""
    if (
        lease is None
        or session.state.value not in LIVE
        or (lease.created_at, lease.epoch) != (session.created_at, session.epoch)
        or lease.last_heartbeat < session.last_heartbeat
    ):
        return session
    return _leased(session, lease)


def _leased(session: Session, lease: Lease) -> Session:
    return replace(
        session,
        last_heartbeat=lease.last_heartbeat,
        suspect_at=lease.suspect_at,
        lease_expires_at=lease.lease_expires_at,
        phase=lease.phase,
    )


def _redis_behind(beat: Beat, result: BeatResult) -> bool:
    """Redis lacks the session, or holds an epoch older than the beat's (a missed takeover)."""
    return result.code == Code.UNKNOWN or (
        result.code == Code.WRONG_EPOCH and beat.epoch is not None and beat.epoch > result.epoch
    )


def _error(beat: Beat, result: BeatResult) -> TetherError | None:
    """The same errors `Store.heartbeat` gives (see `explain_rejected_beat`)."""
    sid = beat.session_id
    if result.code == Code.APPLIED:
        return None
    if result.code == Code.UNKNOWN:
        return NotFound(sid)
    if result.code == Code.WRONG_EPOCH:
        return LeaseLost(sid, beat.epoch, result.epoch)
    if result.code == Code.EXPIRED:
        return LeaseLost(sid, beat.epoch, result.epoch, "the lease expired; it is up for takeover")
    return InvalidTransition(sid, result.state, "heartbeat")
