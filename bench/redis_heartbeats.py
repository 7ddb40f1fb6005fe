"""Batched heartbeats per second with leases in Redis, against the store-only path in the same run.

    python bench/redis_heartbeats.py [--sessions 10000] [--rounds 10] [--batch 1000] [--redis URL]

Both runs use the same durable store kind (memory by default, `--store sqlite` for a file) and
`manager.heartbeats`; the Redis run sends each batch as one Lua call. Prints beats/s and the ratio.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid

from tether import Beat, SessionManager
from tether.policy import Policies, Policy
from tether.stores import Store, open_store
from tether.stores.redis_liveness import RedisLivenessStore


def beats_per_second(manager: SessionManager, sessions: int, rounds: int, batch: int) -> float:
    ids = [manager.create("tutor", f"user-{i % 100}").session_id for i in range(sessions)]
    beats = [Beat(sid, 1) for sid in ids]
    started = time.perf_counter()
    for _ in range(rounds):
        for start in range(0, len(beats), batch):
            results = manager.heartbeats(beats[start : start + batch])
            assert all(r is None for r in results), next(r for r in results if r is not None)
    return sessions * rounds / (time.perf_counter() - started)


def durable(kind: str, directory: str) -> Store:
    url = "memory://" if kind == "memory" else f"sqlite:///{directory}/{uuid.uuid4().hex}.db"
    return open_store(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--store", choices=("memory", "sqlite"), default="memory")
    parser.add_argument(
        "--redis", default=os.environ.get("TETHER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    args = parser.parse_args()
    policies = Policies(Policy(timeout=300))
    with tempfile.TemporaryDirectory() as directory:
        with SessionManager(durable(args.store, directory), policies=policies) as plain:
            baseline = beats_per_second(plain, args.sessions, args.rounds, args.batch)
        prefix = f"tether-bench-{uuid.uuid4().hex[:8]}"
        store = RedisLivenessStore(
            durable(args.store, directory), args.redis, prefix=prefix, flush_interval=3600
        )
        with SessionManager(store, policies=policies) as redis_backed:
            try:
                redis_rate = beats_per_second(redis_backed, args.sessions, args.rounds, args.batch)
            finally:
                keys = list(store.redis.client.scan_iter(match=f"{prefix}:*", count=10_000))
                for start in range(0, len(keys), 10_000):
                    store.redis.client.delete(*keys[start : start + 10_000])
    print(f"sessions={args.sessions} rounds={args.rounds} batch={args.batch} store={args.store}")
    print(f"{args.store} store heartbeats: {baseline:12,.0f} /s  (baseline, same run)")
    print(f"redis heartbeats:        {redis_rate:12,.0f} /s  ({redis_rate / baseline:.2f}x the baseline)")


if __name__ == "__main__":
    main()
