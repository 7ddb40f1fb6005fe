"""`tether serve` under load, on this machine (load generator included). Not a test: run
`python bench/bench_http.py [--seconds S] [--rounds R] [--sessions N] [--json PATH]`.

1. Batched heartbeats through POST /v1/heartbeats (1,000 beats a request, 4 concurrent senders):
   beats/s (target >= 20,000).
2. Checkpoint appends (~1 KB), 16 concurrent clients each on its own session: appends/s and p99,
   against the HTTP stack's own ceiling measured in the same run: a bare FastAPI endpoint taking the
   same body (bench/bare_http.py) under the same uvicorn. Contenders alternate, R rounds, medians
   (goal >= 0.5x the ceiling).
3. SSE fan-out: 100 subscribers on /v1/events; a writer appends a checkpoint every 20 ms; latency from
   the write's acknowledgement to each subscriber's receipt: p50 / p99 (target p99 <= 50 ms).
4. Server RSS with N stored sessions (default 100,000) and the 100 subscribers connected (<= 150 MB).

Every server is a real `tether serve` (one process, SQLite, open mode on loopback).
`--against COMMIT` instead races 1 and 3 against an older commit's server, alternating, R rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from tests.live_server import LiveServer, free_port, wait_ready  # noqa: E402

from tether import SessionManager  # noqa: E402

PAYLOAD: dict[str, Any] = {"step": 7, "notes": "x" * 1000}  # ~1 KB of JSON
CLIENTS = 16
SUBSCRIBERS = 100
# Leases long enough that no bench session times out on a loaded machine between its writes.
POLICIES = Path(tempfile.mkstemp(prefix="bench-http-", suffix=".toml")[1])
POLICIES.write_text("[policies.default]\ntimeout = 3600.0\n")
BENCH_ENV = {"TETHER_POLICY_FILE": str(POLICIES)}


@contextmanager
def uvicorn_process(
    command: list[str], store_url: str, env: dict[str, str] | None = None
) -> Iterator[LiveServer]:
    port = free_port()
    log = Path(tempfile.mkstemp(prefix="bench-http-", suffix=".log")[1])
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **BENCH_ENV, **(env or {})},
        )
    server = LiveServer(f"http://127.0.0.1:{port}", store_url, process, log)
    try:
        wait_ready(server) if "tether" in command else _wait_port(server)
        yield server
    finally:
        server.stop()
        log.unlink(missing_ok=True)


def _wait_port(server: LiveServer) -> None:
    for _ in range(300):
        try:
            httpx.get(server.url + "/docs", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(server.output())


def tether_serve(store_url: str, source: Path | None = None) -> Any:
    """`tether serve` of this checkout, or of another source folder (`--against`)."""
    env = {} if source is None else {"PYTHONPATH": str(source)}
    return uvicorn_process([sys.executable, "-m", "tether", "serve", "--store", store_url], store_url, env)


def bare_serve() -> Any:
    command = [sys.executable, "-m", "uvicorn", "bench.bare_http:app", "--log-level", "warning"]
    return uvicorn_process(command, "")


async def create_sessions(url: str, count: int, agent_type: str) -> list[str]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as c:
        ids = []
        for _ in range(count):
            r = await c.post("/v1/sessions", json={"agent_type": agent_type, "user_id": "bench"})
            ids.append(r.json()["session_id"])
        return ids


# -- 1. heartbeats -----------------------------------------------------------------------------------
async def heartbeats(url: str, ids: list[str], seconds: float, senders: int = 4) -> float:
    """Beats/s of `senders` concurrent clients, each sending all of `ids` in one batch per request."""
    batch = len(ids)
    # Encoded once: the load generator shares the machine, so it should cost as little as it can.
    body = json.dumps({"beats": [{"session_id": sid, "epoch": 1} for sid in ids]}).encode()
    headers = {"Content-Type": "application/json"}
    done = 0
    deadline = time.perf_counter() + seconds

    async def sender() -> None:
        nonlocal done
        async with httpx.AsyncClient(base_url=url, timeout=60) as c:
            while time.perf_counter() < deadline:
                r = await c.post("/v1/heartbeats", content=body, headers=headers)
                assert r.status_code == 200 and not any(r.json()["results"]), r.text[:300]
                done += batch

    start = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(senders)))
    return done / (time.perf_counter() - start)


# -- 2. appends ----------------------------------------------------------------------------------------
async def appends(url: str, ids: list[str], seconds: float) -> tuple[float, float]:
    """(appends/s, p99 seconds) of CLIENTS concurrent appenders, each on its own session."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    body = {"name": "step", "data": PAYLOAD}

    async def client(sid: str) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=60) as c:
            while time.perf_counter() < deadline:
                sent = time.perf_counter()
                r = await c.post(f"/v1/sessions/{sid}/checkpoints", json=body)
                latencies.append(time.perf_counter() - sent)
                assert r.status_code == 201, r.text[:300]

    start = time.perf_counter()
    await asyncio.gather(*(client(sid) for sid in ids))
    elapsed = time.perf_counter() - start
    return len(latencies) / elapsed, percentile(latencies, 99)


def measured(server: LiveServer, run: Coroutine[Any, Any, tuple[float, float]]) -> tuple[float, float, float]:
    """(requests/s, p99, requests per CPU-second of the server process) of one round."""
    cpu = cpu_seconds(server.process.pid)
    start = time.perf_counter()
    rate, p99 = asyncio.run(run)
    requests = rate * (time.perf_counter() - start)
    return rate, p99, requests / max(1e-9, cpu_seconds(server.process.pid) - cpu)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


# -- 3. SSE fan-out --------------------------------------------------------------------------------------
async def fan_out(url: str, events: int = 50, every: float = 0.02) -> tuple[float, float, int]:
    """(p50, p99 seconds, samples): acknowledgement of a write to its receipt by each subscriber."""
    (sid,) = await create_sessions(url, 1, "fanout")
    acked: dict[int, float] = {}
    received: list[tuple[int, float]] = []
    ready = asyncio.Event()
    connected = 0

    async def subscriber() -> None:
        nonlocal connected
        async with (
            httpx.AsyncClient(base_url=url, timeout=60) as c,
            c.stream("GET", "/v1/events", params={"agent_type": "fanout", "kinds": "checkpoint"}) as response,
        ):
            connected += 1
            if connected == SUBSCRIBERS:
                ready.set()
            seen = 0
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    received.append((json.loads(line[5:])["seq"], time.perf_counter()))
                    seen += 1
                    if seen == events:
                        return

    tasks = [asyncio.create_task(subscriber()) for _ in range(SUBSCRIBERS)]
    await asyncio.wait_for(ready.wait(), 60)
    await asyncio.sleep(0.5)
    async with httpx.AsyncClient(base_url=url, timeout=60) as c:
        for _ in range(events):
            r = await c.post(f"/v1/sessions/{sid}/checkpoints", json={"name": "tick"})
            acked[r.json()["seq"]] = time.perf_counter()
            await asyncio.sleep(every)
    await asyncio.wait_for(asyncio.gather(*tasks), 60)
    lags = [at - acked[seq] for seq, at in received]
    return percentile(lags, 50), percentile(lags, 99), len(lags)


# -- 4. RSS ------------------------------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def populate(store_url: str, count: int) -> None:
    """`count` sessions written straight into the store (the server is measured, not the loading)."""
    with SessionManager(store_url) as manager:
        from concurrent.futures import ThreadPoolExecutor

        def make(n: int) -> None:
            manager.create("stored", f"user-{n % 100}", context={"n": n})

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(make, range(count)))


async def rss_with_subscribers(server: LiveServer) -> float:
    async def hold(stop: asyncio.Event) -> None:
        async with (
            httpx.AsyncClient(base_url=server.url, timeout=None) as c,
            c.stream("GET", "/v1/events") as r,
        ):
            await stop.wait()
            await r.aclose()

    stop = asyncio.Event()
    tasks = [asyncio.create_task(hold(stop)) for _ in range(SUBSCRIBERS)]
    await asyncio.sleep(3)
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as c:  # touch what a server serves
        await c.get("/v1/stats")
        await c.get("/metrics")
        await c.get("/v1/sessions", params={"limit": 1000})
    measured = rss_mb(server.process.pid)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return measured


def race(commit: str, rounds: int, seconds: float) -> dict[str, Any]:
    """Heartbeats (beats/s, beats per server CPU-second) and SSE fan-out p99 of this checkout and of
    `commit`'s `tether serve`, alternating, each round on fresh stores: ratios of medians."""
    from bench.race import checkout

    contenders = {"this": None, commit: checkout(commit)}
    figures: dict[str, list[tuple[float, float, float]]] = {name: [] for name in contenders}
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(rounds):
            for name, source in contenders.items():
                url = f"sqlite:///{tmp}/{n}-{len(figures[name])}-{name}.db"
                with tether_serve(url, source) as server:
                    ids = asyncio.run(create_sessions(server.url, 1000, "beater"))
                    cpu, start = cpu_seconds(server.process.pid), time.perf_counter()
                    rate = asyncio.run(heartbeats(server.url, ids, seconds))
                    per_cpu = rate * (time.perf_counter() - start) / (cpu_seconds(server.process.pid) - cpu)
                    p99 = asyncio.run(fan_out(server.url))[1]
                figures[name].append((rate, per_cpu, p99))
                print(
                    f"round {n} {name}: {rate:,.0f} beats/s, {per_cpu:,.0f} per server CPU-s, "
                    f"SSE p99 {p99 * 1000:.1f} ms, load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )

    def median(name: str, i: int) -> float:
        return statistics.median(f[i] for f in figures[name])

    out = {
        "beats_per_s_ratio": median("this", 0) / median(commit, 0),
        "beats_per_cpu_s": (median("this", 1), median(commit, 1)),
        "beats_per_cpu_s_ratio": median("this", 1) / median(commit, 1),
        "sse_p99_ms": (median("this", 2) * 1000, median(commit, 2) * 1000),
    }
    print(json.dumps(out, indent=2))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--against", help="race heartbeats and SSE fan-out against this older commit")
    args = parser.parse_args()
    if args.against:
        race(args.against, args.rounds, args.seconds)
        return
    results: dict[str, Any] = {"cpus": os.cpu_count(), "load_average": os.getloadavg()}
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} before the run", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        with tether_serve(url) as server:
            ids = asyncio.run(create_sessions(server.url, 1000, "beater"))
            cpu = cpu_seconds(server.process.pid)
            start = time.perf_counter()
            rate = asyncio.run(heartbeats(server.url, ids, args.seconds))
            beats = rate * (time.perf_counter() - start)
            per_cpu = beats / (cpu_seconds(server.process.pid) - cpu)
            results["heartbeats"] = {"per_s": rate, "per_server_cpu_s": per_cpu}
            print(
                f"heartbeats: {rate:,.0f} beats/s; {per_cpu:,.0f} per CPU-second of the server "
                f"(target >= 20,000/s); load average {os.getloadavg()[0]:.1f}",
                flush=True,
            )
            p50, p99, n = asyncio.run(fan_out(server.url))
            results["sse"] = {"p50_ms": p50 * 1000, "p99_ms": p99 * 1000, "samples": n}
            print(
                f"SSE fan-out to {SUBSCRIBERS}: p50 {p50 * 1000:.1f} ms, "
                f"p99 {p99 * 1000:.1f} ms ({n} samples)"
            )
            tether_rounds: list[tuple[float, float, float]] = []
            bare_rounds: list[tuple[float, float, float]] = []
            with bare_serve() as bare:
                for _ in range(args.rounds):  # alternating, so machine noise hits both alike
                    # fresh sessions each round: a lease left without heartbeats expires meanwhile
                    ids = asyncio.run(create_sessions(server.url, CLIENTS, "appender"))
                    tether_rounds.append(measured(server, appends(server.url, ids, args.seconds)))
                    bare_rounds.append(measured(bare, appends(bare.url, ids, args.seconds)))
        tether_rate = statistics.median(r[0] for r in tether_rounds)
        bare_rate = statistics.median(r[0] for r in bare_rounds)
        results["appends"] = {
            "tether_per_s": tether_rate,
            "tether_p99_ms": statistics.median(r[1] for r in tether_rounds) * 1000,
            "bare_per_s": bare_rate,
            "bare_p99_ms": statistics.median(r[1] for r in bare_rounds) * 1000,
            "ratio": tether_rate / bare_rate,
            "tether_per_server_cpu_s": statistics.median(r[2] for r in tether_rounds),
            "bare_per_server_cpu_s": statistics.median(r[2] for r in bare_rounds),
            "rounds": args.rounds,
        }
        a = results["appends"]
        a["cpu_ratio"] = a["tether_per_server_cpu_s"] / a["bare_per_server_cpu_s"]
        print(
            f"appends, {CLIENTS} clients: {a['tether_per_s']:,.0f}/s p99 {a['tether_p99_ms']:.1f} ms; "
            "bare FastAPI "
            f"{a['bare_per_s']:,.0f}/s p99 {a['bare_p99_ms']:.1f} ms; ratio {a['ratio']:.2f} (goal >= 0.5); "
            f"per server CPU-s {a['tether_per_server_cpu_s']:,.0f} vs {a['bare_per_server_cpu_s']:,.0f}: "
            f"{a['cpu_ratio']:.2f}"
        )
        big = f"sqlite:///{tmp}/big.db"
        populate(big, args.sessions)
        with tether_serve(big) as server:
            results["rss_mb"] = asyncio.run(rss_with_subscribers(server))
        print(
            f"RSS with {args.sessions:,} sessions and {SUBSCRIBERS} subscribers: "
            f"{results['rss_mb']:.0f} MB (<= 150)"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
