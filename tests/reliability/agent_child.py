"""An agent process for the killed-worker test: checkpoints as fast as it can, printing each ack.

    python -m tests.reliability.agent_child STORE_URL SESSION_ID HOLD_AFTER

Prints `ack SEQ I` after each checkpoint returned (is durable). With HOLD_AFTER > 0 it prints
`holding` after that many checkpoints and then only heartbeats, waiting to be killed.
"""

from __future__ import annotations

import sys
import time

from tether import Policies, Policy, SessionManager
from tether.stores import open_store

POLICIES = Policies(Policy(timeout=1.0))


def main(url: str, session_id: str, hold_after: int) -> None:
    manager = SessionManager(open_store(url), policies=POLICIES, worker_id="doomed-worker")
    with manager.open("tutor", "user-1", session_id=session_id) as session:
        i = 0
        while True:
            i += 1
            cp = session.checkpoint("step", {"i": i})
            print(f"ack {cp.seq} {i}", flush=True)
            if i == hold_after:
                print("holding", flush=True)
                time.sleep(3600)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
