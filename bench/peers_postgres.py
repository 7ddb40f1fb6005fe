"""Peers on the same PostgreSQL for bench_postgres.py: LangGraph's PostgresSaver and ADK's
DatabaseSessionService, each when installed (`pip install 'tether[bench]'`), else a row saying why.

Each peer writes the same 1 KB payload in its own idiom (a LangGraph checkpoint with the payload as
a channel value; an ADK event whose state delta carries it), alternating with the raw floor."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

Run = Callable[[int], None]


def compare(
    conninfo: str, sqlalchemy_url: str, floor: Run, payload: dict[str, Any], rounds: int
) -> list[Any]:
    """Rows for bench_postgres.Row: each peer's append rate against the raw floor, and LangGraph's
    latest-read at 100 and 5,000 checkpoints."""
    from bench_postgres import Row, alternate

    rows: list[Any] = []
    try:
        saver_put, saver_latest, close_saver = langgraph_saver(conninfo, payload)
    except ImportError as exc:
        rows.append(Row("LangGraph PostgresSaver", "-", "-", None, "peer", None, f"not installed: {exc}"))
    else:
        rates = alternate({"raw": floor, "langgraph": saver_put}, per_block=50, rounds=rounds)
        ratio = rates["langgraph"] / rates["raw"]
        at_100 = saver_latest(100)
        at_5000 = saver_latest(5000)
        close_saver()
        rows += [
            Row(
                "LangGraph PostgresSaver put, 1 KB",
                f"{rates['langgraph']:.0f}/s",
                f"{rates['raw']:.0f}/s raw",
                ratio,
                "peer",
                None,
            ),
            Row(
                "LangGraph latest read (get_tuple) at 5,000",
                f"{at_5000:.3f} ms",
                f"{at_100:.3f} ms at 100",
                at_5000 / at_100,
                "peer",
                None,
            ),
        ]
    try:
        adk_append, close_adk = adk_service(sqlalchemy_url, payload)
    except ImportError as exc:
        rows.append(Row("ADK DatabaseSessionService", "-", "-", None, "peer", None, f"not installed: {exc}"))
    else:
        rates = alternate({"raw": floor, "adk": adk_append}, per_block=20, rounds=rounds)
        close_adk()
        rows.append(
            Row(
                "ADK DatabaseSessionService append_event, 1 KB",
                f"{rates['adk']:.0f}/s",
                f"{rates['raw']:.0f}/s raw",
                rates["adk"] / rates["raw"],
                "peer",
                None,
            )
        )
    return rows


def langgraph_saver(
    conninfo: str, payload: dict[str, Any]
) -> tuple[Run, Callable[[int], float], Callable[[], None]]:
    import psycopg
    from langgraph.checkpoint.base import empty_checkpoint
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg.rows import dict_row

    conn = psycopg.connect(conninfo, autocommit=True, prepare_threshold=0, row_factory=dict_row)
    saver = PostgresSaver(conn)  # type: ignore[arg-type]
    saver.setup()

    def writer(thread_id: str) -> Run:
        config: dict[str, Any] = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
        step = 0

        def put(n: int) -> None:
            nonlocal config, step
            for _ in range(n):
                step += 1
                cp = empty_checkpoint()
                cp["channel_values"] = {"payload": payload}
                cp["channel_versions"] = {"payload": step}
                config = saver.put(config, cp, {"source": "loop", "step": step}, {"payload": step})  # type: ignore[arg-type]

        return put

    def latest_ms(history: int) -> float:
        thread_id = f"history-{history}-{uuid.uuid4().hex[:6]}"
        writer(thread_id)(history)
        config: Any = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
        times = []
        for _ in range(200):
            start = time.perf_counter()
            saver.get_tuple(config)
            times.append((time.perf_counter() - start) * 1000)
        return statistics.median(times)

    return writer("bench"), latest_ms, conn.close


def adk_service(sqlalchemy_url: str, payload: dict[str, Any]) -> tuple[Run, Callable[[], None]]:
    from google.adk.events import Event, EventActions
    from google.adk.sessions import DatabaseSessionService

    loop = asyncio.new_event_loop()
    service = DatabaseSessionService(db_url=sqlalchemy_url)
    session = loop.run_until_complete(service.create_session(app_name="bench", user_id="u"))

    async def append(n: int) -> None:
        for i in range(n):
            event = Event(
                author="agent",
                invocation_id=f"inv-{i}",
                actions=EventActions(state_delta={"payload": payload}),
            )
            await service.append_event(session, event)

    def close() -> None:
        loop.run_until_complete(service.close())
        loop.close()

    return lambda n: loop.run_until_complete(append(n)), close
