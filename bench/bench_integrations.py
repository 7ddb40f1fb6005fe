"""The framework adapters against the frameworks' own backends, same workload, same run.

    pip install -e '.[bench,dev]'
    python bench/bench_integrations.py [--steps 200] [--rounds 5] [--no-postgres] [--only adk,a2a]

Contenders, Tether's adapter first, then the framework's own backends:
- LangGraph: `TetherSaver` / `SqliteSaver`, `PostgresSaver` (langgraph-checkpoint-sqlite / -postgres);
- OpenAI Agents SDK: `TetherSession` / `SQLiteSession`, `SQLAlchemySession` on PostgreSQL;
- Google ADK: `TetherSessionService` / `SqliteSessionService`, `DatabaseSessionService` on SQLite
  (aiosqlite) and PostgreSQL (psycopg);
- A2A: `TetherTaskStore` / `DatabaseTaskStore` on SQLite (aiosqlite) and PostgreSQL (psycopg).

Each round gives every contender a fresh database (a fresh PostgreSQL schema) and the same steps,
contenders in a rotating order, so a busy machine slows them alike; the report shows medians over
the rounds and each adapter's ratio to the framework's backends on the same database (> 1: Tether is
faster; for bytes, < 1: Tether stores less).

Per step: LangGraph, one `put` (a checkpoint whose channel holds ~1 KB of JSON) and one `put_writes`
(one write), as a graph step does; "read" is `get_tuple` of the newest checkpoint with its writes
(what every `invoke` starts with). Agents, `add_items` of a user and an assistant item (~0.7 KB);
"read" is `get_items(limit=10)`. ADK, `append_event` of an agent event (~0.7 KB of text, a session
and a `user:` state delta); "read" is `get_session` with the 10 newest events, "read all" the whole
session (what a `Runner` reads). A2A, `save` of the task with one more status message in its history
(as the SDK's TaskManager saves a working task); "read" is `get`. "bytes/step" is the database's
growth per step.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    asynccontextmanager,
    closing,
    contextmanager,
)
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workload import PAYLOAD

POSTGRES_URL = os.environ.get("TETHER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
READS = 200
WHOLE_READS = 20  # whole-session reads (every event of the session) are slower: fewer of them
TEXT = PAYLOAD["notes"]  # ~0.7 KB

Measures = dict[str, float]  # "writes/s", "read µs", ..., "bytes/step"
Database = tuple[str, Callable[[], int]]  # a URL for the contender, the database's size now
Contender = Callable[[int], Measures]  # runs the workload's steps on a fresh database


# -- fresh databases --------------------------------------------------------------------------------
@contextmanager
def sqlite_file(directory: Path) -> Any:
    path = directory / f"{uuid.uuid4().hex}.db"

    def size() -> int:
        """The database's size once its WAL is folded in (the -shm index does not count)."""
        if path.exists():
            with closing(sqlite3.connect(path)) as conn:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists())

    yield path, size


@contextmanager
def postgres_schema() -> Any:
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")

    def size() -> int:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            row = conn.execute(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind = 'r'",
                (schema,),
            ).fetchone()
        return int(row[0]) if row else 0

    try:
        yield schema, size
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def tether_url(database: str, where: Any) -> str:
    if database == "sqlite":
        return f"sqlite:///{where}"
    return f"{POSTGRES_URL}?options=-csearch_path%3D{where}"


def sqlalchemy_engine(database: str, where: Any) -> Any:
    """An async SQLAlchemy engine on a fresh SQLite file (aiosqlite) or PostgreSQL schema (psycopg)."""
    from sqlalchemy.ext.asyncio import create_async_engine

    if database == "sqlite":
        return create_async_engine(f"sqlite+aiosqlite:///{where}")
    url = POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1)
    return create_async_engine(url, connect_args={"options": f"-csearch_path={where}"})


def fresh(database: str, directory: Path) -> AbstractContextManager[Any]:
    return sqlite_file(directory) if database == "sqlite" else postgres_schema()


def timed(call: Callable[[], Any], count: int) -> float:
    """Median microseconds of `call`."""
    samples = []
    for _ in range(count):
        t0 = time.perf_counter()
        call()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1e6


async def atimed(call: Callable[[], Awaitable[Any]], count: int) -> float:
    samples = []
    for _ in range(count):
        t0 = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1e6


def contender(
    database: str, directory: Path, opened: Callable[[str, Any], AbstractAsyncContextManager[Any]], work: Any
) -> Contender:
    """A contender of an async framework: `opened(database, where)` yields the store, `work(store,
    steps)` returns its measures but the bytes (measured once the store is closed)."""

    def run(steps: int) -> Measures:
        with fresh(database, directory) as (where, size):

            async def go() -> tuple[Measures, int]:
                async with opened(database, where) as store:
                    before = size()
                    measures: Measures = await work(store, steps)
                return measures, before

            measures, before = asyncio.run(go())
            return {**measures, "bytes/step": (size() - before) / steps}

    return run


Opened = Callable[[str, Any], AbstractAsyncContextManager[Any]]  # (database, where) -> the store


def on_both(
    directory: Path, databases: list[str], work: Any, sqlite: dict[str, Opened], postgres: dict[str, Opened]
) -> dict[str, Contender]:
    """The contenders of an async framework: those on SQLite, and those on PostgreSQL if asked."""
    found = {name: contender("sqlite", directory, opened, work) for name, opened in sqlite.items()}
    if "postgres" in databases:
        found |= {name: contender("postgres", directory, opened, work) for name, opened in postgres.items()}
    return found


def tether_opened(adapter: Callable[[str], Any]) -> Opened:
    """`opened` for a Tether adapter built from a store URL (and closed after)."""

    @asynccontextmanager
    async def opened(database: str, where: Any) -> Any:
        store = adapter(tether_url(database, where))
        try:
            yield store
        finally:
            store.close()

    return opened


def engine_opened(
    make: Callable[[Any], Awaitable[Any]],
) -> Callable[[str, Any], AbstractAsyncContextManager[Any]]:
    """`opened` for a framework backend on an async SQLAlchemy engine (disposed after)."""

    @asynccontextmanager
    async def opened(database: str, where: Any) -> Any:
        engine = sqlalchemy_engine(database, where)
        try:
            yield await make(engine)
        finally:
            await engine.dispose()

    return opened


# -- LangGraph --------------------------------------------------------------------------------------
def langgraph_run(saver: Any, steps: int) -> Measures:
    from langgraph.checkpoint.base import empty_checkpoint

    thread, parent = uuid.uuid4().hex, None
    started = time.perf_counter()
    for step in range(steps):
        cp = empty_checkpoint()
        cp["channel_values"] = {"messages": {**PAYLOAD, "step": step}}
        cp["channel_versions"] = {"messages": step + 1}
        config: dict[str, Any] = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
        if parent:
            config["configurable"]["checkpoint_id"] = parent
        stored = saver.put(config, cp, {"source": "loop", "step": step}, {"messages": step + 1})
        saver.put_writes(stored, [("messages", {"tool": "search", "step": step})], f"task-{step}", "node")
        parent = stored["configurable"]["checkpoint_id"]
    rate = steps / (time.perf_counter() - started)
    latest = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
    assert saver.get_tuple(latest).pending_writes
    return {"writes/s": rate, "read µs": timed(lambda: saver.get_tuple(latest), READS)}


def langgraph_contenders(directory: Path, databases: list[str]) -> dict[str, Contender]:
    import psycopg
    from langgraph.checkpoint.postgres import PostgresSaver
    from langgraph.checkpoint.sqlite import SqliteSaver

    from tether.integrations.langgraph import TetherSaver

    def saver_on(database: str, open_saver: Callable[[Any], tuple[Any, Callable[[], object]]]) -> Contender:
        """`open_saver(where)` gives a saver on the fresh database and what closes it."""

        def run(steps: int) -> Measures:
            with fresh(database, directory) as (where, size):
                saver, close = open_saver(where)
                before = size()
                try:
                    measures = langgraph_run(saver, steps)
                finally:
                    close()
                return {**measures, "bytes/step": (size() - before) / steps}

        return run

    def tether(database: str) -> Contender:
        def open_saver(where: Any) -> tuple[Any, Callable[[], object]]:
            saver = TetherSaver(tether_url(database, where))
            return saver, saver.close

        return saver_on(database, open_saver)

    def own_sqlite(path: Any) -> tuple[Any, Callable[[], object]]:
        conn = sqlite3.connect(path, check_same_thread=False)
        saver = SqliteSaver(conn)
        saver.setup()
        return saver, conn.close

    def own_postgres(schema: Any) -> tuple[Any, Callable[[], object]]:
        conn: Any = psycopg.connect(
            POSTGRES_URL, autocommit=True, prepare_threshold=0, options=f"-csearch_path={schema}"
        )
        saver = PostgresSaver(conn)
        saver.setup()
        return saver, conn.close

    found = {"Tether SQLite": tether("sqlite"), "SqliteSaver": saver_on("sqlite", own_sqlite)}
    if "postgres" in databases:
        found |= {
            "Tether PostgreSQL": tether("postgres"),
            "PostgresSaver": saver_on("postgres", own_postgres),
        }
    return found


# -- OpenAI Agents SDK ------------------------------------------------------------------------------
async def agents_run(session: Any, steps: int) -> Measures:
    started = time.perf_counter()
    for step in range(steps):
        await session.add_items(
            [{"role": "user", "content": f"question {step}"}, {"role": "assistant", "content": TEXT}]
        )
    rate = steps / (time.perf_counter() - started)
    assert len(await session.get_items(limit=10)) == min(10, 2 * steps)
    return {"writes/s": rate, "read µs": await atimed(lambda: session.get_items(limit=10), READS)}


def agents_contenders(directory: Path, databases: list[str]) -> dict[str, Contender]:
    from agents import SQLiteSession
    from agents.extensions.memory.sqlalchemy_session import SQLAlchemySession

    from tether.integrations.openai_agents import TetherSession

    @asynccontextmanager
    async def own_sqlite(database: str, where: Any) -> Any:
        session = SQLiteSession(uuid.uuid4().hex, db_path=where)
        try:
            yield session
        finally:
            session.close()

    async def sqlalchemy_session(engine: Any) -> Any:
        return SQLAlchemySession(uuid.uuid4().hex, engine=engine, create_tables=True)

    tether = tether_opened(lambda url: TetherSession(uuid.uuid4().hex, url))
    sqlalchemy = engine_opened(sqlalchemy_session)
    return on_both(
        directory,
        databases,
        agents_run,
        {"Tether SQLite": tether, "SQLiteSession": own_sqlite},
        {"Tether PostgreSQL": tether, "SQLAlchemySession PG": sqlalchemy},
    )


# -- Google ADK -------------------------------------------------------------------------------------
async def adk_run(service: Any, steps: int) -> Measures:
    from google.adk.events import Event, EventActions
    from google.adk.sessions.base_session_service import GetSessionConfig
    from google.genai import types

    key = {"app_name": "bench", "user_id": "ana"}
    session = await service.create_session(**key, state={"topic": "tickets"})
    started = time.perf_counter()
    for step in range(steps):
        event = Event(
            author="agent",
            invocation_id=f"inv-{step}",
            content=types.Content(role="model", parts=[types.Part(text=TEXT)]),
            actions=EventActions(state_delta={"step": step, "user:seen": step}),
        )
        await service.append_event(session, event)
    rate = steps / (time.perf_counter() - started)
    recent = GetSessionConfig(num_recent_events=10)
    newest = await service.get_session(**key, session_id=session.id, config=recent)
    assert len(newest.events) == min(10, steps) and newest.state["step"] == steps - 1
    return {
        "writes/s": rate,
        "read µs": await atimed(
            lambda: service.get_session(**key, session_id=session.id, config=recent), READS
        ),
        "read all µs": await atimed(lambda: service.get_session(**key, session_id=session.id), WHOLE_READS),
    }


def adk_contenders(directory: Path, databases: list[str]) -> dict[str, Contender]:
    from google.adk.sessions import DatabaseSessionService
    from google.adk.sessions.sqlite_session_service import SqliteSessionService

    from tether.integrations.adk import TetherSessionService

    @asynccontextmanager
    async def own_sqlite(database: str, where: Any) -> Any:
        yield SqliteSessionService(str(where))

    async def database_service(engine: Any) -> Any:
        return DatabaseSessionService(db_engine=engine)

    tether, own_database = tether_opened(TetherSessionService), engine_opened(database_service)
    return on_both(
        directory,
        databases,
        adk_run,
        {"Tether SQLite": tether, "SqliteSessionService": own_sqlite, "DatabaseSS SQLite": own_database},
        {"Tether PostgreSQL": tether, "DatabaseSS PG": own_database},
    )


# -- A2A --------------------------------------------------------------------------------------------
async def a2a_run(store: Any, steps: int) -> Measures:
    from a2a.server.context import ServerCallContext
    from a2a.types.a2a_pb2 import Message, Part, Role, Task, TaskState, TaskStatus

    call = ServerCallContext()
    task = Task(id=uuid.uuid4().hex, context_id="c", status=TaskStatus(state=TaskState.TASK_STATE_WORKING))
    started = time.perf_counter()
    for step in range(steps):
        if task.status.HasField("message"):
            task.history.append(task.status.message)  # as the SDK's TaskManager does
        message = Message(message_id=f"m{step}", role=Role.ROLE_AGENT, parts=[Part(text=f"step {step} done")])
        task.status.message.CopyFrom(message)
        task.status.timestamp.FromSeconds(1_700_000_000 + step)
        await store.save(task, call)
    rate = steps / (time.perf_counter() - started)
    assert await store.get(task.id, call) == task
    return {"writes/s": rate, "read µs": await atimed(lambda: store.get(task.id, call), READS)}


def a2a_contenders(directory: Path, databases: list[str]) -> dict[str, Contender]:
    from a2a.server.tasks import DatabaseTaskStore

    from tether.integrations.a2a import TetherTaskStore

    async def database_store(engine: Any) -> Any:
        store = DatabaseTaskStore(engine)
        await store.initialize()
        return store

    tether, own = tether_opened(TetherTaskStore), engine_opened(database_store)
    return on_both(
        directory,
        databases,
        a2a_run,
        {"Tether SQLite": tether, "DatabaseTaskStore SQLite": own},
        {"Tether PostgreSQL": tether, "DatabaseTaskStore PG": own},
    )


# -- the rounds -------------------------------------------------------------------------------------
def rounds(contenders: dict[str, Contender], steps: int, count: int) -> dict[str, Measures]:
    names = list(contenders)
    seen: dict[str, dict[str, list[float]]] = {n: {} for n in names}
    for r in range(count):
        for name in names[r % len(names) :] + names[: r % len(names)]:  # rotate who goes first
            for metric, value in contenders[name](steps).items():
                seen[name].setdefault(metric, []).append(value)
    return {n: {k: statistics.median(v) for k, v in m.items()} for n, m in seen.items()}


def ratio(metric: str, ours: float, theirs: float) -> float:
    """> 1 when Tether is faster; for bytes, Tether's over theirs (< 1: Tether stores less)."""
    if metric.endswith("/s"):
        return ours / theirs
    if metric.endswith("µs"):
        return theirs / ours
    return ours / max(theirs, 1)


def report(title: str, results: dict[str, Measures], pairs: list[tuple[str, str]]) -> None:
    metrics = list(next(iter(results.values())))
    print(f"\n{title}")
    print(f"{'contender':<26}" + "".join(f"{m:>14}" for m in metrics))
    for name, measures in results.items():
        print(f"{name:<26}" + "".join(f"{measures[m]:>14.0f}" for m in metrics))
    for ours, theirs in pairs:
        if ours in results and theirs in results:
            a, b = results[ours], results[theirs]
            ratios = ", ".join(f"{m} x{ratio(m, a[m], b[m]):.2f}" for m in metrics)
            print(f"{ours} / {theirs}: {ratios}")


WORKLOADS: dict[str, tuple[str, Callable[[Path, list[str]], dict[str, Contender]], list[tuple[str, str]]]] = {
    "langgraph": (
        "LangGraph checkpointers",
        langgraph_contenders,
        [("Tether SQLite", "SqliteSaver"), ("Tether PostgreSQL", "PostgresSaver")],
    ),
    "agents": (
        "OpenAI Agents SDK sessions",
        agents_contenders,
        [("Tether SQLite", "SQLiteSession"), ("Tether PostgreSQL", "SQLAlchemySession PG")],
    ),
    "adk": (
        "Google ADK session services",
        adk_contenders,
        [
            ("Tether SQLite", "SqliteSessionService"),
            ("Tether SQLite", "DatabaseSS SQLite"),
            ("Tether PostgreSQL", "DatabaseSS PG"),
        ],
    ),
    "a2a": (
        "A2A task stores",
        a2a_contenders,
        [("Tether SQLite", "DatabaseTaskStore SQLite"), ("Tether PostgreSQL", "DatabaseTaskStore PG")],
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument(
        "--only", default=",".join(WORKLOADS), help="comma-separated: " + ", ".join(WORKLOADS)
    )
    args = parser.parse_args()
    databases = ["sqlite"] if args.no_postgres else ["sqlite", "postgres"]
    print(f"load average at start: {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        for key in args.only.split(","):
            title, contenders, pairs = WORKLOADS[key]
            cpu = time.process_time()
            results = rounds(contenders(Path(tmp), databases), args.steps, args.rounds)
            report(f"{title} ({args.steps} steps x {args.rounds} rounds, medians)", results, pairs)
            print(f"(load average now {os.getloadavg()[0]:.1f}; {time.process_time() - cpu:.0f} s CPU)")


if __name__ == "__main__":
    main()
