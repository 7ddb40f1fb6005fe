"""What the demo saw, and the proof that nothing acknowledged was lost.

`Ledger` collects the workers' reports as they arrive; `verify` then compares every acknowledged
checkpoint with the store and every takeover's starting point with the acknowledgements.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from tether.core.errors import NotFound
from tether.core.model import State
from tether.demo.agents import expected_digest, fingerprint
from tether.front.manager import SessionManager


@dataclass(frozen=True, slots=True)
class Ack:
    session_id: str
    seq: int
    name: str
    fingerprint: str
    epoch: int


@dataclass
class Ledger:
    acks: list[Ack] = field(default_factory=list)
    claims: list[tuple[str, int, int]] = field(default_factory=list)  # (session, epoch, resumed seq)
    crashes: int = 0
    freezes: int = 0
    detection_latencies: list[float] = field(default_factory=list)  # seconds
    detected_by: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    rejected: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # by write kind
    workers_started: int = 0
    events_received: int = 0  # from the workers, over the event bridge (--events)


@dataclass(frozen=True)
class Report:
    sessions: int
    child_sessions: int
    workers_started: int
    crashes: int
    freezes: int
    detections: int
    detection_latency_ms: dict[str, float]
    detected_by: dict[str, int]  # the supervisor's sweep, or a worker's claim_next, whichever came first
    takeovers: int
    completed: int
    failed: int
    unfinished: int
    checkpoints_acknowledged: int
    checkpoints_lost: int
    resumed_behind_last_ack: int
    wrong_results: int
    zombie_writes_rejected: int
    zombie_writes_by_kind: dict[str, int]
    events_received: int
    seconds: float
    store: str
    leases: str  # "store", or the Redis URL heartbeats went to

    @property
    def ok(self) -> bool:
        """Nothing lost, nothing resumed from too early, every session finished correctly."""
        return (
            self.checkpoints_lost == 0
            and self.resumed_behind_last_ack == 0
            and self.wrong_results == 0
            and self.unfinished == 0
            and self.failed == 0
        )

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def lost_acks(manager: SessionManager, acks: list[Ack]) -> int:
    """Acknowledged checkpoints that the store does not hold exactly as acknowledged."""
    lost = 0
    for ack in acks:
        try:
            found = manager.checkpoints(ack.session_id, after_seq=ack.seq - 1, limit=1)
        except NotFound:
            lost += 1
            continue
        if not found or (found[0].seq, found[0].name, fingerprint(found[0].data)) != (
            ack.seq,
            ack.name,
            ack.fingerprint,
        ):
            lost += 1
    return lost


def resumed_behind(ledger: Ledger) -> int:
    """Takeovers that started before a step checkpoint an earlier owner had acknowledged."""
    newest: dict[tuple[str, int], int] = defaultdict(int)
    for ack in ledger.acks:
        newest[(ack.session_id, ack.epoch)] = max(newest[(ack.session_id, ack.epoch)], ack.seq)
    behind = 0
    for session_id, epoch, resumed_seq in ledger.claims:
        acked = max((seq for (sid, e), seq in newest.items() if sid == session_id and e < epoch), default=0)
        behind += resumed_seq < acked
    return behind


def build_report(
    manager: SessionManager,
    ledger: Ledger,
    top_level: list[str],
    children: list[str],
    seconds: float,
    leases: str = "store",
) -> Report:
    states: dict[State, int] = defaultdict(int)
    wrong = 0
    never_started = 0
    for session_id in [*top_level, *children]:
        try:
            session = manager.get(session_id)
        except NotFound:  # the deadline came before any worker created it
            never_started += 1
            continue
        states[session.state] += 1
        if session.state is State.COMPLETED:
            wrong += not _result_is_right(manager, session_id, session.agent_type)
    latencies = ledger.detection_latencies
    return Report(
        sessions=len(top_level) + len(children),
        child_sessions=len(children),
        workers_started=ledger.workers_started,
        crashes=ledger.crashes,
        freezes=ledger.freezes,
        detections=len(latencies),
        detection_latency_ms={
            "p50": round(percentile(latencies, 50) * 1000, 1),
            "p99": round(percentile(latencies, 99) * 1000, 1),
            "max": round(max(latencies, default=0.0) * 1000, 1),
        },
        detected_by=dict(ledger.detected_by),
        takeovers=len(ledger.claims),
        completed=states[State.COMPLETED],
        failed=states[State.FAILED],
        unfinished=states[State.ACTIVE] + states[State.PAUSED] + never_started,
        checkpoints_acknowledged=len(ledger.acks),
        checkpoints_lost=lost_acks(manager, ledger.acks),
        resumed_behind_last_ack=resumed_behind(ledger),
        wrong_results=wrong,
        zombie_writes_rejected=sum(ledger.rejected.values()),
        zombie_writes_by_kind=dict(ledger.rejected),
        events_received=ledger.events_received,
        seconds=round(seconds, 2),
        store=manager.store.url,
        leases=leases,
    )


def _result_is_right(manager: SessionManager, session_id: str, agent_type: str) -> bool:
    """The final digest chains every step, so it only matches if no step was skipped or redone
    from a wrong state."""
    final = manager.last_checkpoint(session_id, "session_completed")
    digest = final.data.get("result", {}).get("digest") if final is not None else None
    return digest == expected_digest(agent_type)
