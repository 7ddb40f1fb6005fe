"""The dashboard with many sessions in the store: each page's latency against the /v1 read that
carries the same rows, from the same `tether serve` process in the same run (medians of rounds,
pages and their baselines alternating).

    python bench/bench_dashboard.py --sessions 10000 --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tether import SessionManager

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.live_server import live_server

TYPES = ("tutor", "grader", "alert", "orchestrator", "quality-judge")
# (what the operator opens, the API read of the same rows)
PAIRS = {
    "overview": ("/", "/v1/stats"),
    "sessions list (50 rows)": ("/sessions", "/v1/sessions?limit=50"),
    "suspect filter": ("/sessions?liveness=suspect", "/v1/sessions?liveness=suspect&limit=50"),
    "session detail": ("/sessions/{sid}", "/v1/sessions/{sid}/checkpoints?limit=50"),
}


def seed(store_url: str, count: int) -> str:
    """`count` live sessions over five agent types and 100 users; every tenth has three checkpoints."""
    with SessionManager(store_url) as manager:
        sid = ""
        for i in range(count):
            session = manager.create(TYPES[i % len(TYPES)], f"user-{i % 100}")
            sid = session.session_id
            for step in range(3 if i % 10 == 0 else 0):
                manager.checkpoint(sid, f"step_{step}", {"i": i, "step": step})
    return sid


def timed(client: httpx.Client, path: str) -> float:
    started = time.perf_counter()
    client.get(path).raise_for_status()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    store_url = f"sqlite:///{tempfile.mkdtemp()}/tether.db"
    sid = seed(store_url, args.sessions)
    with live_server(store_url) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        print(f"{args.sessions} sessions; median of {args.rounds} rounds (ms)")
        print(f"{'page':28} {'page':>8} {'/v1 read':>9} {'ratio':>6}")
        for name, (page, api) in PAIRS.items():
            page, api = page.format(sid=sid), api.format(sid=sid)
            timed(client, page), timed(client, api)  # warm up
            pages, reads = [], []
            for _ in range(args.rounds):
                pages.append(timed(client, page))
                reads.append(timed(client, api))
            p, r = statistics.median(pages) * 1000, statistics.median(reads) * 1000
            print(f"{name:28} {p:8.1f} {r:9.1f} {p / r:6.1f}x")


if __name__ == "__main__":
    main()
