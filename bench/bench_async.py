"""AsyncSessionManager against SessionManager on the same workload. Not a test: run
`python bench/bench_async.py [--appends N] [--rounds R] [--json PATH]`.

Workload: checkpoint appends with a ~1 KB payload, by one caller and by 16 concurrent callers (16
threads for sync contenders, 16 coroutines on one event loop for async ones), each caller on its own
session. SQLite always; PostgreSQL when TETHER_TEST_POSTGRES_URL (or the local default) is reachable.
On PostgreSQL two more pairs put the ratio in context: the same INSERT through a raw psycopg sync
pool and async pool (what going async costs psycopg itself on this machine), and the async manager
over the *sync* PostgresStore on the thread adapter. All contenders of a store run in short
alternating blocks (order rotating every round) in the same run, so machine noise hits them alike;
every result is a ratio to its sync twin (issue-3 target for the async manager: >= 0.8).
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
from collections.abc import Callable, Coroutine
from contextlib import suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from tether import SessionManager
from tether.core.validation import encode_json
from tether.front.aio import AsyncSessionManager
from tether.stores.threaded import ThreadedStore

POSTGRES_URL = os.environ.get("TETHER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
PAYLOAD: dict[str, Any] = {"step": 7, "notes": "x" * 1000}  # 1,024 bytes of JSON
CALLERS = 16
TARGET = 0.8

Block = Callable[[int, int], float]  # (callers, appends) -> seconds


@dataclass
class Row:
    store: str
    callers: int
    contender: str
    baseline: str
    per_s: float
    baseline_per_s: float
    ratio: float
    target: str


def _timed(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def threaded(append: Callable[[int], None]) -> Block:
    """Run `append(caller)` appends/callers times on each of `callers` threads."""

    def block(callers: int, appends: int) -> float:
        def caller(n: int) -> None:
            for _ in range(appends // callers):
                append(n)

        threads = [threading.Thread(target=caller, args=(n,)) for n in range(callers)]
        return _timed(lambda: (*map(threading.Thread.start, threads), *map(threading.Thread.join, threads)))

    return block


def gathered(loop: asyncio.AbstractEventLoop, append: Callable[[int], Coroutine[Any, Any, object]]) -> Block:
    """Run `await append(caller)` appends/callers times in each of `callers` coroutines."""

    def block(callers: int, appends: int) -> float:
        async def caller(n: int) -> None:
            for _ in range(appends // callers):
                await append(n)

        async def all_callers() -> None:
            await asyncio.gather(*(caller(n) for n in range(callers)))

        return _timed(lambda: loop.run_until_complete(all_callers()))

    return block


class Bench:
    """Contenders of one store kind, their teardown, and the loop the async ones run on."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.blocks: dict[str, Block] = {}
        self.closers: list[Callable[[], object]] = []

    def sync_manager(self, name: str, manager: SessionManager) -> None:
        sids = [manager.create("bench", f"u{n}").session_id for n in range(CALLERS)]
        self.blocks[name] = threaded(lambda n: manager.checkpoint(sids[n], "step", PAYLOAD))
        self.closers.append(manager.close)

    def async_manager(self, name: str, manager: AsyncSessionManager) -> None:
        async def create() -> list[str]:
            return [(await manager.create("bench", f"u{n}")).session_id for n in range(CALLERS)]

        sids = self.loop.run_until_complete(create())
        self.blocks[name] = gathered(self.loop, lambda n: manager.checkpoint(sids[n], "step", PAYLOAD))
        self.closers.append(lambda: self.loop.run_until_complete(manager.close()))

    def race(self, callers: int, appends: int, rounds: int) -> dict[str, float]:
        """Appends per second of each contender over all its blocks."""
        spent = dict.fromkeys(self.blocks, 0.0)
        order = list(self.blocks)
        for round_ in range(rounds):
            for name in order[round_ % len(order) :] + order[: round_ % len(order)]:
                spent[name] += self.blocks[name](callers, appends)
        done = appends // callers * callers * rounds
        return {name: done / seconds for name, seconds in spent.items()}

    def close(self) -> None:
        for close in self.closers:
            close()
        self.loop.close()


def raw_psycopg(bench: Bench, url: str) -> None:
    """The floor pair: one INSERT per append through psycopg's own sync and async pools."""
    import psycopg
    from psycopg_pool import AsyncConnectionPool, ConnectionPool

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE raw_appends (id bigserial PRIMARY KEY, data jsonb NOT NULL)")
    insert = "INSERT INTO raw_appends (data) VALUES (%s)"
    data = encode_json("data", PAYLOAD)
    sync_pool = ConnectionPool(url, max_size=10, kwargs={"autocommit": True})
    async_pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        url, max_size=10, kwargs={"autocommit": True}, open=False
    )
    bench.loop.run_until_complete(async_pool.open())

    def sync_append(_: int) -> None:
        with sync_pool.connection() as conn:
            conn.execute(insert, (data,))

    async def async_append(_: int) -> None:
        async with async_pool.connection() as conn:
            await conn.execute(insert, (data,))

    bench.blocks["raw psycopg sync pool"] = threaded(sync_append)
    bench.blocks["raw psycopg async pool"] = gathered(bench.loop, async_append)
    bench.closers += [sync_pool.close, lambda: bench.loop.run_until_complete(async_pool.close())]


PAIRS = {  # contender -> the sync baseline it is compared with
    "async manager": "sync manager",
    "async manager, thread adapter": "sync manager",
    "raw psycopg async pool": "raw psycopg sync pool",
}


def postgres_schemas(count: int) -> list[str] | None:
    try:
        import psycopg

        schemas = [f"bench_{uuid.uuid4().hex[:12]}" for _ in range(count)]
        with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=3) as conn:
            for schema in schemas:
                conn.execute(f"CREATE SCHEMA {schema}")  # type: ignore[arg-type]
    except Exception as exc:
        print(f"PostgreSQL skipped: {exc}", file=sys.stderr)
        return None
    return schemas


def schema_url(schema: str) -> str:
    return f"{POSTGRES_URL}{'&' if '?' in POSTGRES_URL else '?'}options=-csearch_path%3D{schema}"


def drop_schemas(schemas: list[str]) -> None:
    import psycopg

    with suppress(Exception), psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        for schema in schemas:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")  # type: ignore[arg-type]


def sqlite_bench(tmp: str) -> Bench:
    bench = Bench()
    bench.sync_manager("sync manager", SessionManager(f"sqlite:///{tmp}/sync.db", worker_id="s"))
    bench.async_manager("async manager", AsyncSessionManager(f"sqlite:///{tmp}/async.db", worker_id="a"))
    return bench


def postgres_bench(schemas: list[str]) -> Bench:
    from tether.stores.postgres import PostgresStore

    bench = Bench()
    sync_url, async_url, threaded_url, raw_url = (schema_url(s) for s in schemas)
    bench.sync_manager("sync manager", SessionManager(sync_url, worker_id="s"))
    bench.async_manager("async manager", AsyncSessionManager(async_url, worker_id="a"))
    adapter = ThreadedStore(PostgresStore.from_url(threaded_url))
    bench.async_manager("async manager, thread adapter", AsyncSessionManager(adapter, worker_id="t"))
    raw_psycopg(bench, raw_url)
    return bench


def run(store: str, bench: Bench, appends: int, rounds: int) -> list[Row]:
    rows: list[Row] = []
    try:
        for callers in (1, CALLERS):
            rates = bench.race(callers, appends, rounds)
            for contender, baseline in PAIRS.items():
                if contender in rates:
                    ratio = rates[contender] / rates[baseline]
                    target = f">= {TARGET}" if contender == "async manager" else "(context)"
                    row = Row(store, callers, contender, baseline, round(rates[contender]),
                              round(rates[baseline]), round(ratio, 2), target)  # fmt: skip
                    rows.append(row)
                    print(json.dumps(asdict(row)), flush=True)
    finally:
        bench.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--appends", type=int, default=800, help="appends per block (default 800)")
    parser.add_argument("--rounds", type=int, default=6, help="blocks per contender (default 6)")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        rows += run("sqlite", sqlite_bench(tmp), args.appends, args.rounds)
    schemas = postgres_schemas(4)
    if schemas is not None:
        try:
            rows += run("postgres", postgres_bench(schemas), args.appends, args.rounds)
        finally:
            drop_schemas(schemas)
    print(f"\n{'store':9} {'callers':>7}  {'contender':31} {'/s':>6}  {'baseline':22} {'/s':>6} {'ratio':>6}")
    for r in rows:
        print(f"{r.store:9} {r.callers:7}  {r.contender:31} {r.per_s:6}  {r.baseline:22} "
              f"{r.baseline_per_s:6} {r.ratio:6}  {r.target}")  # fmt: skip
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2))


if __name__ == "__main__":
    main()
