"""A writer for the disk-fault tests: appends checkpoints, printing each acknowledged seq.

    python -m tests.reliability.disk_child full STORE_URL SESSION_ID HEADROOM_BYTES
    python -m tests.reliability.disk_child read-only STORE_URL SESSION_ID

`full`: the process may write only HEADROOM_BYTES more to any file (RLIMIT_FSIZE, as a disk that
fills up); it appends until three appends in a row fail, then lifts the limit (space freed) and
appends until five more are acknowledged. `read-only`: it reads, then tries each kind of write.
Prints `ack SEQ I`, `error TYPE`, `read N`, `recovered`, one per line, so the acknowledged writes
are recorded outside this process.
"""

from __future__ import annotations

import os
import resource
import signal
import sys

from tether import SessionManager, TetherError

PAYLOAD = {"text": "x" * 4000}


def fill_up(url: str, session_id: str, headroom: int) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an over-limit write fails with EFBIG instead
    path = url.removeprefix("sqlite:///").split("?")[0]
    sizes = [os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p)]
    manager = SessionManager(url, worker_id="writer")
    resource.setrlimit(resource.RLIMIT_FSIZE, (max(sizes) + headroom, resource.RLIM_INFINITY))
    i, failures, after = 0, 0, 0
    while failures < 3 or after < 5:
        try:
            cp = manager.checkpoint(session_id, "step", dict(PAYLOAD, i=i + 1), epoch=1)
        except TetherError as exc:
            print(f"error {type(exc).__name__}", flush=True)
            failures += 1
            if failures == 3:
                resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
                print("recovered", flush=True)
            continue
        i += 1
        after += failures >= 3
        print(f"ack {cp.seq} {i}", flush=True)


def read_only(url: str, session_id: str) -> None:
    manager = SessionManager(url, worker_id="writer")
    print(f"read {len(manager.checkpoints(session_id))}", flush=True)
    writes = (
        lambda: manager.checkpoint(session_id, "step", PAYLOAD, epoch=1),
        lambda: manager.heartbeat(session_id, epoch=1),
        lambda: manager.create("tutor", "u"),
    )
    for write in writes:
        try:
            write()
            print("ack", flush=True)
        except TetherError as exc:
            print(f"error {type(exc).__name__}", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "full":
        fill_up(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        read_only(sys.argv[2], sys.argv[3])
