"""Tether in one screen. Run it, then look at what it left behind with `tether ls`:

    python examples/quickstart.py && tether ls

It writes to ./tether.db (the embedded SQLite default), or to TETHER_STORE_URL if set.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from tether import InvalidTransition, SessionManager


def main() -> None:
    with SessionManager() as manager:
        # An agent starts a session and records its progress as named checkpoints.
        session = manager.create("tutor", "user-1", context={"course": "algebra"})
        sid = session.session_id
        manager.checkpoint(sid, "task_received", {"task": "solve 2x + 3 = 7"})
        manager.heartbeat(sid, phase="thinking")  # "still alive": extends the lease

        # Pausing and resuming are recorded in the checkpoint stream too (it is the audit log).
        manager.pause(sid)
        manager.resume(sid)
        manager.checkpoint(sid, "answer_drafted", {"x": 2})
        done = manager.complete(sid, {"answer": "x = 2"})
        print(f"session {sid}: {done.state}, {done.checkpoint_count} checkpoints")

        # Where a new worker would resume: the last checkpoint, or the last of one name.
        drafted = manager.last_checkpoint(sid, name="answer_drafted")
        print(f"last answer_drafted: #{drafted.seq} {drafted.data}" if drafted else "none")

        # The state machine is enforced: a completed session takes no more checkpoints.
        try:
            manager.checkpoint(sid, "too_late", {})
        except InvalidTransition as exc:
            print(f"refused: {exc}")

        # Listings are newest first, one page at a time.
        for n in range(3):
            manager.create("grader", "user-1", metadata={"batch": n})
        page = manager.list(user_id="user-1", limit=2)
        seen = len(page)
        while page.next_cursor is not None:
            page = manager.list(user_id="user-1", limit=2, cursor=page.next_cursor)
            seen += len(page)
        print(f"user-1 has {seen} sessions")

        # Export (seed-format JSONL) and import into another store.
        with tempfile.TemporaryDirectory() as tmp:
            dump = Path(tmp) / "sessions.jsonl"
            exported = manager.export(dump, user_id="user-1")
            with SessionManager("memory://") as copy:
                imported = copy.import_sessions(dump)
        print(f"exported {exported} sessions, imported {imported} into memory://")


if __name__ == "__main__":
    main()
