"""Issue-13 benchmarks: the encryption codec, fork, and a retention pass. Not a test: run
`python bench/bench_data.py [--postgres URL] [--sessions 100000]`.

- codec: appends and reads through a manager with the Fernet codec against one without, on the
  same store, in short alternating blocks (a shared machine slows both alike); the ratio is the
  codec's price.
- fork: forking a session with 100,000 checkpoints (one bulk INSERT ... SELECT) against forking
  one with 10, and against copying the history by hand (read it all, create with it).
- retention: one pass over N ended sessions (3 checkpoints each), its duration, and the p99 of a
  concurrent appender's latencies during the pass against its p99 in a window of the same length
  just before it (same run, same store).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from bench_sqlite import race
from workload import PAYLOAD

from tether import FernetCodec, Policies, Policy, SessionManager, State
from tether.core.model import NewCheckpoint
from tether.core.validation import encode_payload
from tether.stores.sqlite.rows import session_to_row
from tether.stores.sqlite.store import Q


def codec_ratio(url: str, block: int, rounds: int) -> dict[str, Any]:
    """Calls per second with and without the codec, and their ratio, for append, get and a page
    of 10 checkpoints."""
    plain = SessionManager(url, worker_id="bench")
    sealed = SessionManager(plain.store, worker_id="bench", codec=FernetCodec(FernetCodec.generate_key()))
    ids = {m: m.create("bench", "u", context={"k": "v" * 200}).session_id for m in (plain, sealed)}
    for m in (plain, sealed):
        for _ in range(10):
            m.checkpoint(ids[m], "warm", PAYLOAD)
    both = (("plain", plain), ("codec", sealed))
    calls: dict[str, dict[str, Callable[[], object]]] = {
        "append": {n: (lambda m=m: m.checkpoint(ids[m], "step", PAYLOAD)) for n, m in both},
        "get": {n: (lambda m=m: m.get(ids[m]).context) for n, m in both},
        "checkpoints(10)": {n: (lambda m=m: m.checkpoints(ids[m], limit=10)) for n, m in both},
    }
    result = {}
    for what, contenders in calls.items():
        rates = race(contenders, block, rounds)
        result[what] = {
            **{k: round(v) for k, v in rates.items()},
            "ratio": round(rates["codec"] / rates["plain"], 3),
        }
    plain.close()
    return result


def fork_costs(url: str, history: int) -> dict[str, Any]:
    """Seconds to fork a session of `history` checkpoints, of 10, and to copy `history` by hand."""
    manager = SessionManager(url, worker_id="bench")
    encoded = encode_payload("data", PAYLOAD)
    now = manager.store.now()
    big = manager.create("bench", "u").session_id
    manager.delete(big)
    source = manager.store.create(
        replace(manager.get(manager.create("bench", "u").session_id), session_id=big),
        [NewCheckpoint("step", now, encoded.text, encoded.copy)] * history,
    )
    small = manager.create("bench", "u").session_id
    for _ in range(10):
        manager.checkpoint(small, "step", PAYLOAD)
    fork_big, fork_small, by_hand = [], [], []
    for _ in range(3):
        fork_big.append(_seconds(lambda: manager.fork(source.session_id)))
        fork_small.append(_seconds(lambda: manager.fork(small)))
        by_hand.append(_seconds(lambda: _copy_by_hand(manager, source.session_id)))
    manager.close()
    return {
        "checkpoints": history,
        f"fork {history} s": round(statistics.median(fork_big), 3),
        "fork 10 s": round(statistics.median(fork_small), 4),
        f"read {history} + create with them s": round(statistics.median(by_hand), 3),
    }


def _copy_by_hand(manager: SessionManager, session_id: str) -> None:
    history, after = [], 0
    while batch := manager.checkpoints(session_id, after_seq=after, limit=10_000):
        history.extend(batch)
        after = batch[-1].seq
    session = manager.get(session_id)
    copy = [NewCheckpoint(c.name, c.timestamp, json.dumps(c.data), c.data) for c in history]
    manager.store.create(replace(session, session_id=f"copy-{time.monotonic_ns()}"), copy)


def retention_pass(folder: Path, sessions: int) -> dict[str, Any]:
    """A pass over `sessions` ended sessions on SQLite while one thread appends to a live session."""
    url = f"sqlite:///{folder / 'retention.db'}"
    policies = Policies(default=Policy(retain_completed=3600.0))
    manager = SessionManager(url, worker_id="bench", policies=policies)
    _bulk_ended(manager, folder / "retention.db", sessions)
    live = manager.create("bench", "u").session_id
    latencies: list[float] = []
    stop = threading.Event()

    def append() -> None:
        while not stop.is_set():
            start = time.perf_counter()
            manager.checkpoint(live, "step", PAYLOAD)
            latencies.append(time.perf_counter() - start)

    writer = threading.Thread(target=append)
    writer.start()
    time.sleep(2.0)
    baseline_from = len(latencies)
    time.sleep(1.0)
    before, mark = latencies[baseline_from:], len(latencies)
    start = time.perf_counter()
    removed = manager.enforce_retention(batch=100, max_batches=10_000).removed
    duration = time.perf_counter() - start
    during = latencies[mark:]
    stop.set()
    writer.join()
    baseline = latencies[baseline_from:mark]
    manager.close()
    return {
        "ended sessions": sessions,
        "removed": removed,
        "pass s": round(duration, 2),
        "appends during the pass": len(during),
        "append p99 ms during": round(_p99(during) * 1000, 2),
        "append p99 ms before (1 s window)": round(_p99(baseline or before) * 1000, 2),
        "append p50 ms during / before": [
            round(statistics.median(during) * 1000, 2),
            round(statistics.median(baseline) * 1000, 2),
        ],
    }


def _bulk_ended(manager: SessionManager, path: Path, count: int) -> None:
    """`count` completed sessions that ended two hours ago, 3 checkpoints each, in one transaction
    straight into the file (building them through the API would take an fsync each)."""
    template = manager.complete(manager.create("bench", "u").session_id)
    manager.delete(template.session_id)
    ended = manager.store.now() - timedelta(hours=2)
    template = replace(template, created_at=ended, ended_at=ended, state=State.COMPLETED)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    conn.executemany(
        Q["insert_session"],
        (session_to_row(replace(template, session_id=f"ended-{n:06}")) for n in range(count)),
    )
    rows = ((f"ended-{n:06}", seq, "step", 0, json.dumps(PAYLOAD)) for n in range(count) for seq in (1, 2, 3))
    conn.executemany(Q["insert_checkpoint"], rows)
    conn.execute("COMMIT")
    conn.close()


def _p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) > 1 else float("nan")


def _seconds(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--postgres", metavar="URL", help="also measure codec and fork on PostgreSQL")
    parser.add_argument("--sessions", type=int, default=100_000, help="ended sessions for the retention pass")
    parser.add_argument("--history", type=int, default=100_000, help="checkpoints of the forked session")
    parser.add_argument("--block", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        report["codec sqlite"] = codec_ratio(f"sqlite:///{folder / 'codec.db'}", args.block, args.rounds)
        report["codec memory"] = codec_ratio("memory://", args.block * 5, args.rounds)
        report["fork sqlite"] = fork_costs(f"sqlite:///{folder / 'fork.db'}", args.history)
        if args.postgres:
            report["codec postgres"] = codec_ratio(args.postgres, args.block, args.rounds)
            report["fork postgres"] = fork_costs(args.postgres, args.history)
        report["retention sqlite"] = retention_pass(folder, args.sessions)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
