"""Issue-3 benchmarks for the PostgreSQL store. Not a test: run `python bench/bench_postgres.py`.

Every number stands next to a baseline measured in the same run on the same server (a raw psycopg
INSERT+commit loop, LangGraph's PostgresSaver and ADK's DatabaseSessionService when installed),
and contenders run in short alternating blocks, so a noisy, shared machine slows both alike.
Everything happens in a throwaway schema that is dropped at the end. `--sessions` sizes the
listing table (default 1,000,000 over 10,000 users).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import peers_postgres
import psycopg
from workload import NAMES, PAYLOAD, Row

from tether import SessionManager
from tether.core.model import NewCheckpoint
from tether.core.postgres_url import PoolSettings
from tether.core.validation import encode_payload
from tether.stores.postgres import PostgresStore

POSTGRES_URL = os.environ.get("TETHER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
RAW_DDL = """
CREATE TABLE raw_checkpoints (session_id text COLLATE "C" NOT NULL, seq bigint NOT NULL,
    name text COLLATE "C" NOT NULL, created_at timestamptz NOT NULL, data jsonb NOT NULL,
    PRIMARY KEY (session_id, seq));
CREATE INDEX raw_by_name ON raw_checkpoints (session_id, name, seq DESC);
"""
RAW_INSERT = "INSERT INTO raw_checkpoints VALUES (%s, %s, %s, now(), %s::jsonb)"


def alternate(contenders: dict[str, Callable[[int], None]], per_block: int, rounds: int) -> dict[str, float]:
    """Operations per second of each contender, run in interleaved blocks of `per_block` calls."""
    spent = dict.fromkeys(contenders, 0.0)
    for _ in range(rounds):
        for name, run in contenders.items():
            start = time.perf_counter()
            run(per_block)
            spent[name] += time.perf_counter() - start
    return {name: per_block * rounds / seconds for name, seconds in spent.items()}


def latencies_ms(call: Callable[[], object], count: int) -> list[float]:
    out = []
    for _ in range(count):
        start = time.perf_counter()
        call()
        out.append((time.perf_counter() - start) * 1000)
    return out


def p50(values: list[float]) -> float:
    return statistics.median(values)


@contextmanager
def bench_schema() -> Iterator[str]:
    """A fresh schema for this run, dropped afterwards; yields a store URL pointing at it."""
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}&pool_max=16"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def raw_connection(url: str, autocommit: bool = False) -> psycopg.Connection[Any]:
    return psycopg.connect(PoolSettings.from_url(url).conninfo, autocommit=autocommit)


def raw_appender(url: str, session_id: str) -> Callable[[int], None]:
    """The floor: json.dumps + INSERT + commit per checkpoint, on the same kind of table."""
    conn = raw_connection(url)
    seq = 0

    def run(n: int) -> None:
        nonlocal seq
        for _ in range(n):
            seq += 1
            conn.execute(RAW_INSERT, (session_id, seq, NAMES[seq % 5], json.dumps(PAYLOAD)))
            conn.commit()

    return run


def tether_appender(manager: SessionManager, session_id: str) -> Callable[[int], None]:
    def run(n: int) -> None:
        for i in range(n):
            manager.checkpoint(session_id, NAMES[i % 5], PAYLOAD, epoch=1)

    return run


def store_appender(store: PostgresStore, session_id: str) -> Callable[[int], None]:
    """The store's append alone (the manager adds `SELECT now()` for the checkpoint's timestamp)."""

    def run(n: int) -> None:
        for i in range(n):
            payload = encode_payload("data", PAYLOAD)
            new = NewCheckpoint(NAMES[i % 5], store.clock.now(), payload.text, payload.copy)
            store.append(session_id, new, 1)

    return run


def concurrent(run_one: Callable[[int, int], None], writers: int, per_writer: int) -> float:
    """Aggregate operations per second of `writers` threads each calling run_one(writer, n)."""
    threads = [threading.Thread(target=run_one, args=(w, per_writer)) for w in range(writers)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return writers * per_writer / (time.perf_counter() - start)


def bench_appends(url: str, manager: SessionManager, store: PostgresStore, rounds: int) -> list[Row]:
    with raw_connection(url, autocommit=True) as conn:
        conn.execute(RAW_DDL)
    sessions = [manager.create("bench", "writer").session_id for _ in range(17)]
    rates = alternate(
        {
            "raw": raw_appender(url, "raw-single"),
            "manager": tether_appender(manager, sessions[0]),
            "store": store_appender(store, sessions[0]),
        },
        per_block=50,
        rounds=2 * rounds,
    )
    raws = [raw_appender(url, f"raw-{w}") for w in range(16)]
    raw16 = concurrent(lambda w, n: raws[w](n), 16, 25 * rounds)
    tether16 = concurrent(lambda w, n: tether_appender(manager, sessions[1 + w])(n), 16, 25 * rounds)
    floor = rates["raw"]
    return [
        Row(
            "single writer append, 1 KB (manager.checkpoint)",
            f"{rates['manager']:.0f}/s",
            f"{floor:.0f}/s raw",
            rates["manager"] / floor,
            ">= 0.9x",
            rates["manager"] / floor >= 0.9,
            "timestamp from the database clock (carried forward)",
        ),
        Row(
            "single writer append, 1 KB (store.append)",
            f"{rates['store']:.0f}/s",
            f"{floor:.0f}/s raw",
            rates["store"] / floor,
            ">= 0.9x",
            rates["store"] / floor >= 0.9,
        ),
        Row(
            "16 concurrent appenders (pool of 16)",
            f"{tether16:.0f}/s",
            f"{floor:.0f}/s single raw",
            tether16 / floor,
            ">= 2.5x",
            tether16 / floor >= 2.5,
            f"16 raw connections: {raw16:.0f}/s",
        ),
    ]


def bulk_load(url: str, sessions: int, users: int, history: int) -> None:
    """`sessions` sessions over `users` users and 200,000 checkpoints spread over 2,000 of them, and
    histories of 100 and `history` checkpoints for the sessions "short" and "long"; generated inside
    the server (faster than COPY from the client, same table)."""
    data = json.dumps(PAYLOAD)
    with raw_connection(url, autocommit=True) as conn:
        conn.execute(
            """INSERT INTO sessions (session_id, agent_type, user_id, state, created_at, last_heartbeat,
                 state_since, context, metadata, version, owner, epoch, heartbeat_timeout, suspect_after,
                 lease_expires_at, suspect_at, recoveries, last_seq)
               SELECT 's' || g, 'type-' || (g %% 7), 'user-' || (g %% %(users)s),
                 (ARRAY['active','paused','completed','failed'])[1 + g %% 4],
                 now() - g * interval '1 second', now(), now(), '{}', '{}', 1, 'w', 1, 60, 30,
                 now() + interval '1 hour', now() + interval '30 minutes', 0,
                 CASE WHEN g <= 2000 THEN 100 ELSE 0 END
               FROM generate_series(1, %(sessions)s) g""",
            {"users": users, "sessions": sessions},
        )
        conn.execute(
            """INSERT INTO checkpoints (session_id, seq, name, created_at, data)
               SELECT 's' || (1 + g / 100), 1 + g %% 100, (ARRAY['task_received','tool_call','tool_result',
                 'draft','review'])[1 + g %% 5], now(), %(data)s::json
               FROM generate_series(0, 199999) g""",
            {"data": data},
        )
        for session_id, length in (("short", 100), ("long", history)):
            conn.execute(
                """INSERT INTO checkpoints (session_id, seq, name, created_at, data)
                   SELECT %(id)s, g, (ARRAY['task_received','tool_call','tool_result','draft','review'])
                     [1 + g %% 5], now(), %(data)s::json
                   FROM generate_series(1, %(n)s) g""",
                {"id": session_id, "n": length, "data": data},
            )
            conn.execute("UPDATE sessions SET last_seq = %s WHERE session_id = %s", (length, session_id))
        conn.execute("ANALYZE sessions")
        conn.execute("ANALYZE checkpoints")


RAW_LATEST = (
    "SELECT seq, name, created_at, data FROM checkpoints WHERE session_id = %s ORDER BY seq DESC LIMIT 1"
)
RAW_LISTING = "SELECT * FROM sessions WHERE user_id = %s ORDER BY created_at DESC, session_id DESC LIMIT 51"
RAW_BY_NAME = (
    "SELECT seq, name, created_at, data FROM checkpoints"
    " WHERE session_id = %s AND name = %s ORDER BY seq DESC LIMIT 1"
)


def interleaved_ms(
    calls: dict[str, Callable[[], object]], samples: int, rounds: int = 10
) -> dict[str, list[float]]:
    """Latencies of each call, sampled in alternating blocks (the order rotating every round, as a
    call's place in the round measurably shifts its latency) so machine noise hits them alike."""
    out: dict[str, list[float]] = {name: [] for name in calls}
    order = list(calls)
    for round_ in range(rounds):
        for name in order[round_ % len(order) :] + order[: round_ % len(order)]:
            out[name] += latencies_ms(calls[name], samples // rounds)
    return out


def read_row(metric: str, ms: float, floor: float, note: str = "") -> Row:
    """A point read's p50 against the raw prepared SELECT's, and the issue's 0.1 ms target."""
    baseline = f"raw prepared SELECT {floor:.3f} ms"
    return Row(metric, f"{ms:.3f} ms", baseline, ms / floor, "<= 0.1 ms", ms <= 0.1, note)


def bench_reads(url: str, manager: SessionManager, history: int, users: int, samples: int) -> list[Row]:
    store = manager.store
    raw = raw_connection(url, autocommit=True)  # the floor: a prepared SELECT, one round trip
    reads = interleaved_ms(
        {
            "select 1": lambda: raw.execute("SELECT 1", prepare=True).fetchall(),
            "raw latest": lambda: raw.execute(RAW_LATEST, ("long",), prepare=True).fetchall(),
            "raw by name": lambda: raw.execute(RAW_BY_NAME, ("long", "tool_call"), prepare=True).fetchall(),
            "latest": lambda: store.last_checkpoint("long"),
            "by name": lambda: store.last_checkpoint("long", "tool_call"),
            "manager latest": lambda: manager.last_checkpoint("long"),
            "manager by name": lambda: manager.last_checkpoint("long", "tool_call"),
            "latest short": lambda: store.last_checkpoint("short"),
        },
        samples,
        rounds=14,
    )
    raw.close()
    latest, by_name, latest_short = reads["latest"], reads["by name"], reads["latest short"]
    floor, floor_by_name = p50(reads["raw latest"]), p50(reads["raw by name"])
    user_ids = [f"user-{(i * 7919) % users}" for i in range(samples)]
    listing, raw_listing = [0.0] * samples, [0.0] * samples
    raw = raw_connection(url, autocommit=True)
    for i, user in enumerate(user_ids):  # alternating: Tether, then the raw query for another user
        start = time.perf_counter()
        manager.list(user_id=user, limit=50)
        listing[i] = (time.perf_counter() - start) * 1000
        start = time.perf_counter()
        raw.execute(RAW_LISTING, (user_ids[-1 - i],), prepare=True).fetchall()
        raw_listing[i] = (time.perf_counter() - start) * 1000
    raw.close()
    rates = alternate(
        {"short": tether_appender(manager, "short"), "long": tether_appender(manager, "long")},
        per_block=100,
        rounds=10,
    )
    cost = rates["short"] / rates["long"]
    return [
        read_row(
            f"latest checkpoint at {history:,} (p50, store.last_checkpoint)",
            p50(latest),
            floor,
            f"SELECT 1: {p50(reads['select 1']):.3f} ms; at 100: {p50(latest_short):.3f} ms",
        ),
        read_row(
            f"latest checkpoint at {history:,} (p50, manager.last_checkpoint)",
            p50(reads["manager latest"]),
            floor,
        ),
        read_row(f"last-by-name at {history:,} (p50, store.last_checkpoint)", p50(by_name), floor_by_name),
        read_row(
            f"last-by-name at {history:,} (p50, manager.last_checkpoint)",
            p50(reads["manager by name"]),
            floor_by_name,
        ),
        Row(
            "list one user's sessions, 50 newest (p50)",
            f"{p50(listing):.3f} ms",
            f"raw prepared SELECT {p50(raw_listing):.3f} ms",
            p50(listing) / p50(raw_listing),
            "<= 2 ms",
            p50(listing) <= 2.0,
        ),
        Row(
            f"append cost at {history:,} vs 100 history",
            f"{rates['long']:.0f}/s",
            f"{rates['short']:.0f}/s at 100",
            cost,
            "<= 1.1x",
            cost <= 1.1,
        ),
    ]


def server_times_ms(url: str) -> dict[str, float]:
    """Execution time inside PostgreSQL (EXPLAIN ANALYZE) of the read statements, no client cost."""
    from tether.stores.postgres.calls import QUERIES

    out = {}
    probes = {
        "last_checkpoint": {"session_id": "long", "name": None},
        "last_checkpoint_named": {"session_id": "long", "name": "tool_call"},
    }
    with raw_connection(url, autocommit=True) as conn:
        for name, params in probes.items():
            times = []
            for _ in range(50):
                plan = conn.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {QUERIES[name]}", params).fetchone()
                assert plan is not None
                times.append(plan[0][0]["Execution Time"])
            out[name] = statistics.median(times)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--history", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows: list[Row] = []
    with bench_schema() as url:
        store = PostgresStore.from_url(url)
        manager = SessionManager(store, worker_id="bench")
        rows += bench_appends(url, manager, store, args.rounds)
        for session_id in ("short", "long"):
            manager.create("bench", "someone", session_id=session_id)
        start = time.perf_counter()
        bulk_load(url, args.sessions, args.users, args.history)
        loaded = time.perf_counter() - start
        rows += bench_reads(url, manager, args.history, args.users, samples=4000)
        server = server_times_ms(url)
        rows.append(
            Row(
                "latest / last-by-name inside the server (EXPLAIN ANALYZE)",
                f"{server['last_checkpoint']:.3f} / {server['last_checkpoint_named']:.3f} ms",
                "",
                None,
                "<= 0.1 ms",
                max(server.values()) <= 0.1,
                f"bulk load of {args.sessions:,} sessions took {loaded:.0f} s",
            )
        )
        store.close()
        with bench_schema() as peer_url:  # the peers' own tables (LangGraph's is also "checkpoints")
            conninfo = PoolSettings.from_url(peer_url).conninfo
            alchemy = "postgresql+psycopg" + conninfo.removeprefix("postgresql")
            floor = raw_appender(url, "raw-peer")
            rows += peers_postgres.compare(conninfo, alchemy, floor, PAYLOAD, args.rounds)
    report(rows, args.json)


def report(rows: list[Row], as_json: bool) -> None:
    if as_json:
        print(json.dumps([asdict(r) for r in rows], indent=2))
        return
    width = max(len(r.metric) for r in rows)
    for r in rows:
        ratio = "" if r.ratio is None else f"{r.ratio:5.2f}x"
        verdict = {True: "ok", False: "MISS", None: "-"}[r.ok]
        cells = f"{r.tether:>16}  {r.baseline:>26}  {ratio:>7}  {r.target:>9}  {verdict:<4}"
        print(f"{r.metric:<{width}}  {cells} {r.note}")


if __name__ == "__main__":
    main()
