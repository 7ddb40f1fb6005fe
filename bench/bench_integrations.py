"""The framework adapters against the frameworks' own backends, same workload, same run.

    pip install -e '.[bench,dev]'
    python bench/bench_integrations.py [--steps 200] [--rounds 5] [--no-postgres]

LangGraph: `TetherSaver` against `SqliteSaver` / `PostgresSaver` (langgraph-checkpoint-sqlite /
-postgres); OpenAI Agents SDK: `TetherSession` against `SQLiteSession`. Each round gives every
contender a fresh thread and the same steps, contenders in a rotating order, so a busy machine
slows them alike; the report shows medians over the rounds and the ratio to the framework's own
backend (> 1: Tether is faster; for bytes, < 1: Tether stores less).

Per LangGraph step: one `put` (a checkpoint whose channel holds ~1 KB of JSON) and one `put_writes`
(one write), as a graph step does. "latest read" is `get_tuple` of the thread's newest checkpoint
with its writes (what every `invoke` starts with); "history" is the store's growth per step.
Per Agents step: `add_items` of one user and one assistant item; "latest read" is
`get_items(limit=10)`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workload import PAYLOAD

from tether.integrations.langgraph import TetherSaver

POSTGRES_URL = os.environ.get("TETHER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
READS = 200

Contender = Callable[[], Any]  # opens a saver or session: (it, its store's size in bytes, close)


# -- LangGraph -------------------------------------------------------------------------------
def checkpoint(step: int, parent: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    from langgraph.checkpoint.base import empty_checkpoint

    cp = empty_checkpoint()
    cp["channel_values"] = {"messages": {**PAYLOAD, "step": step}}
    cp["channel_versions"] = {"messages": step + 1}
    config = {"configurable": {"thread_id": "", "checkpoint_ns": ""}}
    if parent:
        config["configurable"]["checkpoint_id"] = parent
    return cp, config


def run_langgraph(saver: Any, steps: int) -> tuple[float, float]:
    """(steps per second, median latest-read microseconds) on a fresh thread."""
    thread = uuid.uuid4().hex
    parent = None
    started = time.perf_counter()
    for step in range(steps):
        cp, config = checkpoint(step, parent)
        config["configurable"]["thread_id"] = thread
        stored = saver.put(config, cp, {"source": "loop", "step": step}, {"messages": step + 1})
        saver.put_writes(stored, [("messages", {"tool": "search", "step": step})], f"task-{step}", "node")
        parent = stored["configurable"]["checkpoint_id"]
    rate = steps / (time.perf_counter() - started)
    latest = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
    reads = []
    for _ in range(READS):
        t0 = time.perf_counter()
        found = saver.get_tuple(latest)
        reads.append(time.perf_counter() - t0)
        assert found is not None and found.pending_writes
    return rate, statistics.median(reads) * 1e6


def postgres_schema() -> str:
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return schema


def postgres_size(schema: str) -> int:
    import psycopg

    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind = 'r'",
            (schema,),
        ).fetchone()
    return int(row[0]) if row else 0


def drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def langgraph_contenders(directory: Path, postgres: bool) -> dict[str, Contender]:
    def tether_sqlite() -> Any:
        path = directory / f"t-{uuid.uuid4().hex}.db"
        saver = TetherSaver(f"sqlite:///{path}")
        return saver, lambda: sum(p.stat().st_size for p in directory.glob(path.name + "*")), saver.close

    def own_sqlite() -> Any:
        import sqlite3

        from langgraph.checkpoint.sqlite import SqliteSaver

        path = directory / f"l-{uuid.uuid4().hex}.db"
        conn = sqlite3.connect(path, check_same_thread=False)
        saver = SqliteSaver(conn)
        saver.setup()
        return saver, lambda: sum(p.stat().st_size for p in directory.glob(path.name + "*")), conn.close

    contenders: dict[str, Contender] = {"Tether SQLite": tether_sqlite, "SqliteSaver": own_sqlite}
    if postgres:

        def tether_postgres() -> Any:
            schema = postgres_schema()
            saver = TetherSaver(f"{POSTGRES_URL}?options=-csearch_path%3D{schema}")

            def close() -> None:
                saver.close()
                drop_schema(schema)

            return saver, lambda: postgres_size(schema), close

        def own_postgres() -> Any:
            import psycopg
            from langgraph.checkpoint.postgres import PostgresSaver

            schema = postgres_schema()
            conn = psycopg.connect(
                POSTGRES_URL, autocommit=True, prepare_threshold=0, options=f"-csearch_path={schema}"
            )
            saver = PostgresSaver(conn)
            saver.setup()

            def close() -> None:
                conn.close()
                drop_schema(schema)

            return saver, lambda: postgres_size(schema), close

        contenders |= {"Tether PostgreSQL": tether_postgres, "PostgresSaver": own_postgres}
    return contenders


# -- OpenAI Agents SDK ------------------------------------------------------------------------
async def run_agents(session: Any, steps: int) -> tuple[float, float]:
    started = time.perf_counter()
    for step in range(steps):
        await session.add_items(
            [
                {"role": "user", "content": f"question {step}"},
                {"role": "assistant", "content": PAYLOAD["notes"]},
            ]
        )
    rate = steps / (time.perf_counter() - started)
    reads = []
    for _ in range(READS):
        t0 = time.perf_counter()
        items = await session.get_items(limit=10)
        reads.append(time.perf_counter() - t0)
        assert len(items) == 10
    return rate, statistics.median(reads) * 1e6


def agents_contenders(directory: Path) -> dict[str, Contender]:
    from agents import SQLiteSession

    from tether.integrations.openai_agents import TetherSession

    def tether_sqlite() -> Any:
        path = directory / f"ta-{uuid.uuid4().hex}.db"
        session = TetherSession(uuid.uuid4().hex, f"sqlite:///{path}")
        return session, lambda: sum(p.stat().st_size for p in directory.glob(path.name + "*")), session.close

    def own_sqlite() -> Any:
        path = directory / f"la-{uuid.uuid4().hex}.db"
        session = SQLiteSession(uuid.uuid4().hex, db_path=path)
        return session, lambda: sum(p.stat().st_size for p in directory.glob(path.name + "*")), session.close

    return {"Tether SQLite": tether_sqlite, "SQLiteSession": own_sqlite}


# -- the rounds --------------------------------------------------------------------------------
def rounds(
    contenders: dict[str, Contender], run: Callable[[Any, int], tuple[float, float]], steps: int, count: int
) -> dict[str, dict[str, float]]:
    names = list(contenders)
    seen: dict[str, dict[str, list[float]]] = {n: {"rate": [], "read": [], "bytes": []} for n in names}
    for r in range(count):
        for name in names[r % len(names) :] + names[: r % len(names)]:  # rotate who goes first
            target, size, close = contenders[name]()
            before = size()
            rate, read = run(target, steps)
            seen[name]["rate"].append(rate)
            seen[name]["read"].append(read)
            seen[name]["bytes"].append((size() - before) / steps)
            close()
    return {n: {k: statistics.median(v) for k, v in m.items()} for n, m in seen.items()}


def report(title: str, results: dict[str, dict[str, float]], pairs: list[tuple[str, str]]) -> None:
    print(f"\n{title}")
    print(f"{'contender':<20} {'steps/s':>9} {'latest read µs':>15} {'bytes/step':>11}")
    for name, m in results.items():
        print(f"{name:<20} {m['rate']:>9.0f} {m['read']:>15.0f} {m['bytes']:>11.0f}")
    for ours, theirs in pairs:
        if ours in results and theirs in results:
            a, b = results[ours], results[theirs]
            print(
                f"{ours} / {theirs}: writes x{a['rate'] / b['rate']:.2f},"
                f" latest read x{b['read'] / a['read']:.2f} (faster > 1),"
                f" bytes per step x{a['bytes'] / max(b['bytes'], 1):.2f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        lg = rounds(
            langgraph_contenders(directory, not args.no_postgres), run_langgraph, args.steps, args.rounds
        )
        report(
            f"LangGraph checkpointers ({args.steps} steps x {args.rounds} rounds, medians)",
            lg,
            [("Tether SQLite", "SqliteSaver"), ("Tether PostgreSQL", "PostgresSaver")],
        )
        ag = rounds(
            agents_contenders(directory),
            lambda session, steps: asyncio.run(run_agents(session, steps)),
            args.steps,
            args.rounds,
        )
        report(
            f"OpenAI Agents SDK sessions ({args.steps} steps x {args.rounds} rounds, medians)",
            ag,
            [("Tether SQLite", "SQLiteSession")],
        )


if __name__ == "__main__":
    main()
