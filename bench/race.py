"""Issue 15's targets, raced in one run: this checkout against an older commit and the raw floors.

    python bench/race.py                       # this checkout vs 5ca6c5f, both stores
    python bench/race.py --against 0081531 --store postgres --rounds 7

Each version of Tether runs in a fresh subprocess per round (two versions never share an
interpreter; the older commit is checked out once as a detached git worktree under the system
temp folder and imported from there), the order rotating each round. Inside a subprocess every
ratio against a raw floor is measured there and then, in alternating blocks or alternating calls:
a sqlite3 / psycopg INSERT+commit loop with Tether's keys, a psycopg prepared SELECT of the same
row from Tether's own table, a sqlite3 SELECT of a listing's rows with orjson decoding their JSON
columns, LangGraph's SqliteSaver.put (pip install 'tether[bench]'). The table
gives the median over rounds. PostgreSQL runs in throwaway schemas of TETHER_TEST_POSTGRES_URL.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
POSTGRES_URL = os.environ.get("TETHER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
DEEP = 100_000  # the history length of the depth and point-read rows
APPENDS, THREADS, PER_THREAD, READS, LISTED = 1500, 16, 100, 1500, 2000


# -- what runs inside a contender's subprocess ---------------------------------------------------
def payload() -> dict[str, Any]:
    sys.path.insert(0, str(HERE))
    from workload import PAYLOAD as DEFAULT

    return dict(DEFAULT)


def rate(call: Callable[[], object], count: int) -> float:
    for _ in range(20):
        call()
    start = time.perf_counter()
    for _ in range(count):
        call()
    return count / (time.perf_counter() - start)


def threaded_rate(calls: Sequence[Callable[[], object]], per_thread: int) -> float:
    barrier = threading.Barrier(len(calls) + 1)

    def run(call: Callable[[], object]) -> None:
        barrier.wait()
        for _ in range(per_thread):
            call()

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    return len(calls) * per_thread / (time.perf_counter() - start)


def paired_latencies(
    first: Callable[[], object], second: Callable[[], object], count: int
) -> tuple[float, float]:
    """Median latencies of two calls made alternately, so drift (a growing WAL, load) hits both."""
    for _ in range(20):
        first()
        second()
    times: tuple[list[float], list[float]] = ([], [])
    for n in range(2 * count):
        call, kept = (first, times[0]) if n % 2 == 0 else (second, times[1])
        start = time.perf_counter()
        call()
        kept.append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def schema_url(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}"


def with_schema(work: Callable[[str], dict[str, float]]) -> dict[str, float]:
    import psycopg

    schema = f"race_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        try:
            return work(schema_url(POSTGRES_URL, schema))
        finally:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


def deepen_postgres(url: str, session_id: str, count: int) -> None:
    """`count` checkpoints behind a session, written inside the server (either version's schema)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO checkpoints (session_id, seq, name, created_at, data)"
            " SELECT %s, g, (ARRAY['task_received','tool_call','tool_result','draft','review'])[1 + g %% 5],"
            " now(), %s FROM generate_series(1, %s) g",
            (session_id, json.dumps(payload()), count),
        )
        conn.execute("UPDATE sessions SET last_seq = %s WHERE session_id = %s", (count, session_id))
        conn.execute("VACUUM ANALYZE checkpoints")


def deepen_sqlite(path: Path, session_id: str, count: int) -> None:
    import sqlite3

    with sqlite3.connect(path) as conn:
        conn.execute(
            "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < ?)"
            " INSERT INTO checkpoints (session_id, seq, name, ts_us, data)"
            " SELECT ?, n, 'step', 0, ? FROM g",
            (count, session_id, json.dumps(payload())),
        )


def alternating_rates(
    first: Callable[[], object], second: Callable[[], object], block: int, blocks: int
) -> float:
    """How many times faster `first` runs than `second`, timed in alternating blocks of calls."""
    spent = [0.0, 0.0]
    for n in range(2 * blocks):
        call = first if n % 2 == 0 else second
        start = time.perf_counter()
        for _ in range(block):
            call()
        spent[n % 2] += time.perf_counter() - start
    return spent[1] / spent[0]


def tether_sqlite(folder: Path) -> dict[str, float]:
    """Absolute rates (raced against the other commit across processes) and the ratios against the
    raw floors, measured here in alternating blocks."""
    sys.path.insert(0, str(HERE))
    from baselines import langgraph_putter, raw_appender, raw_lister

    from tether import SessionManager

    data = payload()
    out: dict[str, float] = {}
    with SessionManager(f"sqlite:///{folder / 'one.db'}", worker_id="w") as manager:
        sid = manager.create("bench", "u").session_id
        append = lambda: manager.checkpoint(sid, "step", data)  # noqa: E731
        out["sqlite append, 1 writer"] = rate(append, APPENDS)
        raw = raw_appender(folder / "one.db", "FULL", data)
        out["sqlite append, 1 writer vs raw sqlite3"] = alternating_rates(append, raw, 100, 8)
        put = langgraph_putter(folder / "langgraph.db", data)
        if not isinstance(put, str):
            out["sqlite append, 1 writer vs SqliteSaver.put"] = alternating_rates(append, put, 100, 8)
    with SessionManager(f"sqlite:///{folder / 'many.db'}", worker_id="w") as manager:
        sids = [manager.create("bench", "u").session_id for _ in range(THREADS)]
        calls = [lambda s=s: manager.checkpoint(s, "step", data) for s in sids]
        raw = raw_appender(folder / "many.db", "FULL", data)
        threads, single = [], []
        for _ in range(3):
            threads.append(threaded_rate(calls, PER_THREAD))
            single.append(rate(raw, APPENDS // 3))
        out["sqlite append, 16 threads"] = statistics.median(threads)
        out["sqlite append, 16 threads vs raw sqlite3 1 writer"] = sum(threads) / sum(single)
    with SessionManager(f"sqlite:///{folder / 'deep.db'}", worker_id="w") as manager:
        short, deep = (manager.create("bench", "u").session_id for _ in range(2))
        deepen_sqlite(folder / "deep.db", short, 100)
        deepen_sqlite(folder / "deep.db", deep, DEEP)
        at_100, at_deep = paired_latencies(
            lambda: manager.checkpoint(short, "step", data),
            lambda: manager.checkpoint(deep, "step", data),
            READS,
        )
        out["sqlite append #100,000 / #100 (time)"] = at_deep / at_100
    with SessionManager(f"sqlite:///{folder / 'list.db'}", worker_id="w") as manager:
        for n in range(LISTED):
            manager.create("bench", f"user-{n % 10}", context={"n": n, "topic": "listing"})
        raw_list = raw_lister(folder / "list.db", "user-3", 50)
        ours, floor = paired_latencies(lambda: manager.list(user_id="user-3", limit=50), raw_list, 300)
        out["sqlite list 50 sessions (s)"] = ours
        out["sqlite list 50 sessions / raw sqlite3 + orjson (time)"] = ours / floor
    return out


def append_statement(conn: Any, session_id: str, text: str) -> Callable[[], object] | None:
    """Tether's own append statement sent by a raw psycopg loop: the ceiling of the store's
    single-writer ratio (None on a commit whose statement this does not know)."""
    try:
        from tether.stores.postgres.calls import QUERIES
    except ImportError:
        return None
    from datetime import UTC, datetime

    sql = QUERIES["append_checkpoint"]

    def append() -> object:
        params = {"session_id": session_id, "epoch": None, "name": "step", "created_at": datetime.now(UTC)}
        return conn.execute(sql, {**params, "data": text}, prepare=True).fetchall()

    return append


def raw_inserter(conn: Any, text: str) -> Callable[[], object]:
    """A raw INSERT+commit loop on its own connection and session key (one per thread)."""
    key, seq = uuid.uuid4().hex, iter(range(1, 10**9))
    return lambda: conn.execute(
        "INSERT INTO raw VALUES (%s, %s, 'step', now(), %s)", (key, next(seq), text), prepare=True
    )


def tether_postgres() -> dict[str, float]:
    """Ratios against raw psycopg on the same server, measured here in alternation."""

    def work(url: str) -> dict[str, float]:
        import psycopg

        from tether import SessionManager

        data = payload()
        text = json.dumps(data)
        out: dict[str, float] = {}
        raw = psycopg.connect(url, autocommit=True)
        raw.execute(
            'CREATE TABLE raw (session_id text COLLATE "C" NOT NULL, seq bigint NOT NULL,'
            ' name text COLLATE "C" NOT NULL, created_at timestamptz NOT NULL, data json NOT NULL,'
            " PRIMARY KEY (session_id, seq))"
        )
        seq = iter(range(1, 10**9))

        def insert() -> None:
            raw.execute(
                "INSERT INTO raw VALUES ('r', %s, 'step', now(), %s)", (next(seq), text), prepare=True
            )

        with SessionManager(f"{url}&pool_max=16", worker_id="w") as manager:
            sid = manager.create("bench", "u").session_id
            append = lambda: manager.checkpoint(sid, "step", data)  # noqa: E731
            out["postgres append, 1 writer"] = rate(append, APPENDS // 3)
            out["postgres append, 1 writer vs raw INSERT+commit"] = alternating_rates(append, insert, 50, 10)
            statement = append_statement(raw, manager.create("bench", "u").session_id, text)
            if statement is not None:
                out["postgres append statement alone vs raw INSERT+commit"] = alternating_rates(
                    statement, insert, 50, 10
                )
            unfenced = iter(range(1, 10**9))
            out["postgres unfenced INSERT into checkpoints vs raw INSERT+commit"] = alternating_rates(
                lambda: raw.execute(
                    "INSERT INTO checkpoints (session_id, seq, name, created_at, data)"
                    " VALUES ('unfenced', %s, 'step', now(), %s)",
                    (next(unfenced), text),
                    prepare=True,
                ),
                insert,
                50,
                10,
            )
            sids = [manager.create("bench", "u").session_id for _ in range(THREADS)]
            calls = [lambda s=s: manager.checkpoint(s, "step", data) for s in sids]
            others = [psycopg.connect(url, autocommit=True) for _ in range(THREADS)]
            raw_calls = [raw_inserter(conn, text) for conn in others]
            known = [append_statement(c, manager.create("bench", "u").session_id, text) for c in others]
            statements = [s for s in known if s is not None]
            threads, raw_threads, statement_threads, single = [], [], [], []
            for _ in range(3):
                threads.append(threaded_rate(calls, PER_THREAD // 2))
                raw_threads.append(threaded_rate(raw_calls, PER_THREAD // 2))
                if statements:
                    statement_threads.append(threaded_rate(statements, PER_THREAD // 2))
                single.append(rate(insert, APPENDS // 6))
            out["postgres append, 16 threads vs raw 1 writer"] = sum(threads) / sum(single)
            out["postgres raw INSERT+commit, 16 threads vs raw 1 writer"] = sum(raw_threads) / sum(single)
            if statement_threads:
                out["postgres append statement alone, 16 threads vs raw 1 writer"] = sum(
                    statement_threads
                ) / sum(single)
            for conn in others:
                conn.close()
            short, deep = (manager.create("bench", "u").session_id for _ in range(2))
            deepen_postgres(url, short, 100)
            deepen_postgres(url, deep, DEEP)
            latest = (
                "SELECT seq, name, created_at, data FROM checkpoints WHERE session_id = %s"
                " ORDER BY seq DESC LIMIT 1"
            )
            by_name = (
                "SELECT seq, name, created_at, data FROM checkpoints WHERE session_id = %s AND name = %s"
                " ORDER BY seq DESC LIMIT 1"
            )
            ours, floor = paired_latencies(
                lambda: manager.last_checkpoint(deep),
                lambda: raw.execute(latest, (deep,), prepare=True).fetchone(),
                READS,
            )
            out["postgres latest at 100,000 / raw prepared SELECT (time)"] = ours / floor
            ours, floor = paired_latencies(
                lambda: manager.last_checkpoint(deep, "draft"),
                lambda: raw.execute(by_name, (deep, "draft"), prepare=True).fetchone(),
                READS,
            )
            out["postgres latest by name at 100,000 / raw prepared SELECT (time)"] = ours / floor
            at_100, at_deep = paired_latencies(
                lambda: manager.checkpoint(short, "s", data),
                lambda: manager.checkpoint(deep, "s", data),
                READS,
            )
            out["postgres append #100,000 / #100 (time)"] = at_deep / at_100
        raw.close()
        return out

    return with_schema(work)


def worker(kind: str, source: str) -> None:
    """Run one contender and print its figures as JSON (the parent reads the last line)."""
    sys.path.insert(0, source)
    with tempfile.TemporaryDirectory() as folder:
        figures = tether_sqlite(Path(folder)) if kind == "sqlite" else tether_postgres()
    print(json.dumps(figures))


# -- the race ---------------------------------------------------------------------------------
def checkout(commit: str) -> Path:
    """The older commit's source folder, from a detached worktree made once."""
    folder = Path(tempfile.gettempdir()) / f"tether-race-{commit}"
    if not folder.exists():
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(folder), commit], check=True
        )
    return folder / "src"


def run(kind: str, source: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--worker", kind, str(source)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"{kind} from {source} failed:\n{done.stderr[-3000:]}")
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def ratios(rounds: list[dict[str, dict[str, float]]], label: str) -> dict[str, float]:
    """Median over rounds of each ratio for one version of Tether ("new" or "old")."""
    per_round: dict[str, list[float]] = {}
    for r in rounds:
        for store in ("sqlite", "postgres"):
            mine, other = r.get(f"{store}-{label}", {}), r.get(f"{store}-old", {})
            for name, value in mine.items():
                if " vs " in name or " / " in name:
                    per_round.setdefault(name, []).append(value)
            if label == "new":
                for name in ("sqlite append, 1 writer", "sqlite append, 16 threads"):
                    if name in mine and name in other:
                        per_round.setdefault(f"{name} vs the old commit", []).append(mine[name] / other[name])
                name = "sqlite list 50 sessions (s)"
                if name in mine and name in other:
                    per_round.setdefault("sqlite list 50 sessions / the old commit (time)", []).append(
                        mine[name] / other[name]
                    )
    return {name: statistics.median(values) for name, values in per_round.items()}


TARGETS = {
    "sqlite append, 1 writer vs the old commit": ">= 0.9",
    "sqlite append, 16 threads vs the old commit": ">= 0.9",
    "sqlite append, 1 writer vs raw sqlite3": ">= 0.95 (standing goal)",
    "sqlite append, 16 threads vs raw sqlite3 1 writer": ">= 3 (standing goal)",
    "sqlite append, 1 writer vs SqliteSaver.put": "> 1",
    "sqlite append #100,000 / #100 (time)": "<= 1.1",
    "sqlite list 50 sessions / the old commit (time)": "re-measured (Session decoded eagerly now)",
    "sqlite list 50 sessions / raw sqlite3 + orjson (time)": "the floor of eager decoding",
    "postgres append, 1 writer vs raw INSERT+commit": ">= 0.9",
    "postgres append statement alone vs raw INSERT+commit": "the ceiling of the row above",
    "postgres unfenced INSERT into checkpoints vs raw INSERT+commit": "what the table alone costs",
    "postgres append, 16 threads vs raw 1 writer": ">= 2",
    "postgres append statement alone, 16 threads vs raw 1 writer": "ceiling of the row above",
    "postgres raw INSERT+commit, 16 threads vs raw 1 writer": "what 16 Python threads reach at all",
    "postgres latest at 100,000 / raw prepared SELECT (time)": "<= 1.1",
    "postgres latest by name at 100,000 / raw prepared SELECT (time)": "<= 1.1",
    "postgres append #100,000 / #100 (time)": "<= 1.1",
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--against", default="5ca6c5f", help="the older commit raced in the same run")
    parser.add_argument("--store", choices=["sqlite", "postgres", "all"], default="all")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write every round's raw figures here")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
        return
    old, new = checkout(args.against), ROOT / "src"
    contenders: list[tuple[str, str, Path]] = []
    for store in ("sqlite", "postgres"):
        if args.store in (store, "all"):
            contenders += [(f"{store}-new", store, new), (f"{store}-old", store, old)]
    rounds: list[dict[str, dict[str, float]]] = []
    for n in range(args.rounds):
        shift = n % len(contenders)
        figures = {
            label: run(kind, source) for label, kind, source in contenders[shift:] + contenders[:shift]
        }
        rounds.append(figures)
        print(f"round {n + 1}/{args.rounds} done (load {os.getloadavg()[0]:.1f})", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(rounds, indent=1))
    now, before = ratios(rounds, "new"), ratios(rounds, "old")
    print(f"| target | this checkout | {args.against} | goal |\n|---|---|---|---|")
    for name, goal in TARGETS.items():
        if name in now:
            was = "1 (itself)" if "old commit" in name else f"{before.get(name, float('nan')):.2f}"
            print(f"| {name} | {now[name]:.2f} | {was} | {goal} |")


if __name__ == "__main__":
    main()
