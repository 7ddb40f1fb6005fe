"""AsyncSessionManager against SessionManager on the same workload. Not a test: run
`python bench/bench_async.py [--appends N] [--rounds R] [--json PATH]`.

Workload: checkpoint appends with a ~1 KB payload, by one caller and by 16 concurrent callers (16
threads for the sync manager, 16 coroutines on one event loop for the async one), each caller on its
own session. SQLite always; PostgreSQL when TETHER_TEST_POSTGRES_URL (or the local default) is
reachable. Both managers run in short alternating blocks in the same run, so machine noise hits
both alike; the result is the ratio async / sync (issue-3 target: >= 0.8).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from tether import SessionManager
from tether.aio import AsyncSessionManager

POSTGRES_URL = os.environ.get("TETHER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
PAYLOAD: dict[str, Any] = {"step": 7, "notes": "x" * 1000}  # 1,024 bytes of JSON
CALLERS = 16
TARGET = 0.8


@dataclass
class Row:
    store: str
    callers: int
    sync_per_s: float
    async_per_s: float
    ratio: float
    ok: bool


class Pair:
    """A sync and an async manager on two fresh stores of one kind, with one session per caller."""

    def __init__(self, sync_url: str, async_url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.sync = SessionManager(sync_url, worker_id="bench-sync")
        self.aio = AsyncSessionManager(async_url, worker_id="bench-async")
        self.sync_ids = [self.sync.create("bench", f"u{n}").session_id for n in range(CALLERS)]
        self.async_ids = self.loop.run_until_complete(self._create_async())

    async def _create_async(self) -> list[str]:
        return [(await self.aio.create("bench", f"u{n}")).session_id for n in range(CALLERS)]

    def sync_block(self, callers: int, appends: int) -> float:
        def append(session_id: str, count: int) -> None:
            for _ in range(count):
                self.sync.checkpoint(session_id, "step", PAYLOAD)

        if callers == 1:
            return _timed(lambda: append(self.sync_ids[0], appends))
        threads = [
            threading.Thread(target=append, args=(sid, appends // callers)) for sid in self.sync_ids[:callers]
        ]
        return _timed(lambda: (*map(threading.Thread.start, threads), *map(threading.Thread.join, threads)))

    def async_block(self, callers: int, appends: int) -> float:
        async def append(session_id: str, count: int) -> None:
            for _ in range(count):
                await self.aio.checkpoint(session_id, "step", PAYLOAD)

        async def block() -> None:
            share = appends if callers == 1 else appends // callers
            await asyncio.gather(*(append(sid, share) for sid in self.async_ids[:callers]))

        return _timed(lambda: self.loop.run_until_complete(block()))

    def close(self) -> None:
        self.sync.close()
        self.loop.run_until_complete(self.aio.close())
        self.loop.close()


def _timed(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def measure(store: str, pair: Pair, callers: int, appends: int, rounds: int) -> Row:
    """Alternate sync and async blocks (order swapped every round); rates are total appends over
    total time, so the ratio is a ratio of mean costs."""
    spent = {"sync": 0.0, "async": 0.0}
    blocks = {"sync": pair.sync_block, "async": pair.async_block}
    for round_ in range(rounds):
        for name in ("sync", "async") if round_ % 2 == 0 else ("async", "sync"):
            spent[name] += blocks[name](callers, appends)
    done = appends if callers == 1 else appends // callers * callers
    sync_rate, async_rate = done * rounds / spent["sync"], done * rounds / spent["async"]
    ratio = async_rate / sync_rate
    return Row(store, callers, round(sync_rate), round(async_rate), round(ratio, 2), ratio >= TARGET)


def postgres_urls() -> tuple[str, str] | None:
    """Two fresh schemas on the test database, or None when there is no server."""
    try:
        import psycopg

        schemas = [f"bench_{uuid.uuid4().hex[:12]}" for _ in range(2)]
        with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=3) as conn:
            for schema in schemas:
                conn.execute(f"CREATE SCHEMA {schema}")  # type: ignore[arg-type]
    except Exception as exc:
        print(f"PostgreSQL skipped: {exc}", file=sys.stderr)
        return None
    sep = "&" if "?" in POSTGRES_URL else "?"
    first, second = (f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}" for schema in schemas)
    return first, second


def drop_postgres_schemas(urls: tuple[str, str]) -> None:
    import psycopg

    with suppress(Exception), psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        for url in urls:
            conn.execute(f"DROP SCHEMA IF EXISTS {url.rsplit('%3D', 1)[1]} CASCADE")  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--appends", type=int, default=1600, help="appends per block (default 1600)")
    parser.add_argument("--rounds", type=int, default=6, help="alternating blocks per side (default 6)")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        stores: list[tuple[str, str, str]] = [
            ("sqlite", f"sqlite:///{tmp}/sync.db", f"sqlite:///{tmp}/async.db")
        ]
        pg = postgres_urls()
        if pg is not None:
            stores.append(("postgres", *pg))
        for name, sync_url, async_url in stores:
            pair = Pair(sync_url, async_url)
            try:
                for callers in (1, CALLERS):
                    rows.append(measure(name, pair, callers, args.appends, args.rounds))
                    print(json.dumps(asdict(rows[-1])), flush=True)
            finally:
                pair.close()
        if pg is not None:
            drop_postgres_schemas(pg)
    print(f"\n{'store':9} {'callers':>7} {'sync/s':>9} {'async/s':>9} {'ratio':>6}  target >= {TARGET}")
    for row in rows:
        mark = "ok" if row.ok else "BELOW"
        line = f"{row.store:9} {row.callers:7} {row.sync_per_s:9} {row.async_per_s:9} {row.ratio:6}  {mark}"
        print(line)
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2))


if __name__ == "__main__":
    main()
