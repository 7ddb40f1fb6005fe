"""What the SIGKILL takeover tests share: a worker process per framework
(`python -m tests.integrations.<framework>_worker URL THREAD EFFECTS_FILE WORKER_ID [BLOCK_AT]`),
the kill, and the effects log that says which step ran on which worker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from tests.conftest import STORE_KINDS
from tests.support import REPO, subprocess_env
from tether import Policies, Policy

DURABLE_KINDS = [kind for kind in STORE_KINDS if kind != "memory"]  # a worker process needs a shared store
POLICIES = Policies(default=Policy(timeout=5.0, suspect_after=2.5))  # room for a loaded machine


def worker(
    module: str, url: str, thread: str, effects: Path, name: str, *block_at: str
) -> subprocess.Popen[str]:
    """Start `tests.integrations.<module>` as worker `name`; its stdin and stdout are pipes."""
    command = [
        sys.executable,
        "-m",
        f"tests.integrations.{module}",
        url,
        thread,
        str(effects),
        name,
        *block_at,
    ]
    return subprocess.Popen(
        command, cwd=REPO, env=subprocess_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )


def wait_blocked(process: subprocess.Popen[str]) -> str:
    """Wait until the worker says it is blocked inside its step; what it said after "blocked"."""
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith("blocked"), line
    return line.removeprefix("blocked").strip()


def kill(process: subprocess.Popen[str]) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.wait(10)


def finish(process: subprocess.Popen[str], say: str | None = None) -> Any:
    """Wait for a worker that runs to the end (after writing `say` to its stdin); what it printed
    last, as JSON."""
    out, _ = process.communicate(say, timeout=90)
    assert process.returncode == 0, out
    return json.loads(out.splitlines()[-1])


def killed_then_finished(module: str, url: str, thread: str, effects: Path, block_at: str) -> Any:
    """Worker-1 is SIGKILLed inside step `block_at`; worker-2 takes over and runs to the end."""
    first = worker(module, url, thread, effects, "worker-1", block_at)
    wait_blocked(first)
    kill(first)
    return finish(worker(module, url, thread, effects, "worker-2"))


def step(effects: str, line: str, block: bool) -> None:
    """What a worker's step does: log that it ran here; when told to, say "blocked" and wait to be
    killed."""
    with open(effects, "a") as log:
        log.write(f"{line}\n")
    if block:
        print("blocked", flush=True)
        threading.Event().wait()
