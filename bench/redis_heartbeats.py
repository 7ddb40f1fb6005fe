"""Batched heartbeats per second with leases in Redis, against the store-only path in the same run.

    python bench/redis_heartbeats.py [--sessions 10000] [--rounds 7] [--batch 1000] [--store memory|sqlite]

Both sides use `manager.heartbeats` over the same kind of durable store (the Redis side sends each
batch as one Lua call). Rounds alternate between the two sides, so a busy machine slows both alike;
the table reports the median rate of each side and the median of the per-round ratios.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from tether import Beat, SessionManager
from tether.core.policy import Policies, Policy
from tether.stores import Store, open_store
from tether.stores.redis.liveness import RedisLivenessStore

POLICIES = Policies(Policy(timeout=3600))


def one_round(manager: SessionManager, beats: list[Beat], batch: int) -> float:
    """Beats per second for one pass over every session."""
    started = time.perf_counter()
    for start in range(0, len(beats), batch):
        results = manager.heartbeats(beats[start : start + batch])
        assert all(r is None for r in results), next(r for r in results if r is not None)
    return len(beats) / (time.perf_counter() - started)


def sessions(manager: SessionManager, count: int) -> list[Beat]:
    return [Beat(manager.create("tutor", f"user-{i % 100}").session_id, 1) for i in range(count)]


def durable(kind: str, directory: str) -> Store:
    return open_store("memory://" if kind == "memory" else f"sqlite:///{directory}/{uuid.uuid4().hex}.db")


@contextmanager
def redis_backed(kind: str, directory: str, url: str) -> Iterator[SessionManager]:
    prefix = f"tether-bench-{uuid.uuid4().hex[:8]}"
    store = RedisLivenessStore(durable(kind, directory), url, prefix=prefix, flush_interval=3600)
    try:
        with SessionManager(store, policies=POLICIES) as manager:
            yield manager
    finally:
        client = store.redis.client
        keys = list(client.scan_iter(match=f"{prefix}:*", count=10_000))
        for start in range(0, len(keys), 10_000):
            client.delete(*keys[start : start + 10_000])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--store", choices=("memory", "sqlite"), default="memory")
    parser.add_argument(
        "--redis", default=os.environ.get("TETHER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    args = parser.parse_args()
    store_rates, redis_rates = [], []
    with (
        tempfile.TemporaryDirectory() as directory,
        SessionManager(durable(args.store, directory), policies=POLICIES) as plain,
        redis_backed(args.store, directory, args.redis) as redis,
    ):
        plain_beats, redis_beats = sessions(plain, args.sessions), sessions(redis, args.sessions)
        for _ in range(args.rounds):
            store_rates.append(one_round(plain, plain_beats, args.batch))
            redis_rates.append(one_round(redis, redis_beats, args.batch))
    ratio = statistics.median(r / s for r, s in zip(redis_rates, store_rates, strict=True))
    print(f"{args.sessions} sessions, {args.rounds} interleaved rounds, batches of {args.batch}")
    print(f"{'heartbeats via':<28}{'median beats/s':>16}")
    print(f"{args.store + ' store (baseline)':<28}{statistics.median(store_rates):>16,.0f}")
    print(f"{'Redis (Lua, one call/batch)':<28}{statistics.median(redis_rates):>16,.0f}   x{ratio:.2f}")


if __name__ == "__main__":
    main()
