"""Prometheus metrics (prefix `tether_`, seconds, no session or user ids as labels), one registry
per app. Counters count what this process did; gauges of stored sessions come from one aggregate
query (`Store.count_sessions`), at most every REFRESH seconds."""

from __future__ import annotations

import time
from datetime import datetime

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from tether.core.errors import ConflictError, LeaseLost
from tether.core.model import SessionCount
from tether.events.bus import Event

disable_created_metrics()  # type: ignore[no-untyped-call]  # `_created` series double the output and no dashboard reads them
REFRESH = 5.0
TRANSITIONS = ("paused", "resumed", "completed", "failed", "timed_out", "claimed", "updated")


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.sessions = Gauge("tether_sessions", "Stored sessions", ["state", "agent_type"], registry=r)
        self.live = Gauge("tether_sessions_live", "Live sessions", ["liveness", "agent_type"], registry=r)
        self.oldest = Gauge(
            "tether_heartbeat_oldest_age_seconds",
            "Age of the oldest last heartbeat of a live session",
            ["agent_type"],
            registry=r,
        )
        self.created = Counter("tether_sessions_created", "Sessions created", ["agent_type"], registry=r)
        self.transitions = Counter(
            "tether_session_transitions", "Lifecycle transitions", ["kind"], registry=r
        )
        self.checkpoints = Counter("tether_checkpoints", "Checkpoints appended", registry=r)
        self.heartbeats = Counter("tether_heartbeats", "Heartbeats", ["outcome"], registry=r)
        self.takeovers = Counter("tether_takeovers", "Sessions taken over", ["kind"], registry=r)
        self.fencing = Counter(
            "tether_fencing_rejections", "Writes refused by fencing or a stale version", ["kind"], registry=r
        )
        self.detection = Histogram(
            "tether_detection_latency_seconds",
            "From lease expiry to the supervisor's time-out",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
            registry=r,
        )
        self.sweep = Histogram(
            "tether_supervisor_sweep_duration_seconds", "Supervisor sweep duration", registry=r
        )
        self.last_sweep = Gauge(
            "tether_supervisor_last_sweep_timestamp_seconds", "When the last sweep finished", registry=r
        )
        self.subscribers = Gauge("tether_event_subscribers", "Open event streams", registry=r)
        self.requests = Counter(
            "tether_http_requests", "HTTP requests", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "tether_http_request_duration_seconds", "HTTP request latency", ["method", "route"], registry=r
        )
        for kind in TRANSITIONS:  # absent series break rate() alerts: create them up front
            self.transitions.labels(kind)
        for outcome in ("applied", "rejected"):
            self.heartbeats.labels(outcome)
        for kind in ("claim", "claim_next"):
            self.takeovers.labels(kind)
        for kind in ("lease_lost", "version_mismatch"):
            self.fencing.labels(kind)
        self._refreshed = 0.0

    def stale(self) -> bool:
        return time.monotonic() - self._refreshed > REFRESH

    def set_counts(self, counts: list[SessionCount], now: datetime) -> None:
        """Replace the stored-session gauges with a fresh aggregate."""
        self._refreshed = time.monotonic()
        for gauge in (self.sessions, self.live, self.oldest):
            gauge.clear()
        by_state: dict[tuple[str, str], int] = {}
        by_liveness: dict[tuple[str, str], int] = {}
        oldest: dict[str, datetime] = {}
        for c in counts:
            key = (c.state.value, c.agent_type)
            by_state[key] = by_state.get(key, 0) + c.count
            if c.liveness is not None:
                live = (c.liveness.value, c.agent_type)
                by_liveness[live] = by_liveness.get(live, 0) + c.count
                oldest[c.agent_type] = min(oldest.get(c.agent_type, c.oldest_heartbeat), c.oldest_heartbeat)
        for (state, agent_type), n in by_state.items():
            self.sessions.labels(state, agent_type).set(n)
        for (liveness, agent_type), n in by_liveness.items():
            self.live.labels(liveness, agent_type).set(n)
        for agent_type, at in oldest.items():
            self.oldest.labels(agent_type).set(max(0.0, (now - at).total_seconds()))

    def on_event(self, event: Event, owner: tuple[str, str] | None) -> None:
        """Count a change this process made (the event hub calls it once per local event)."""
        if event.kind == "created":
            self.created.labels(owner[1] if owner is not None else "unknown").inc()
        elif event.kind == "checkpoint":
            self.checkpoints.inc()
        elif event.kind in TRANSITIONS:
            self.transitions.labels(event.kind).inc()

    def rejected(self, error: Exception) -> None:
        """Count a write refused by fencing (a stale epoch) or a stale If-Match version."""
        if isinstance(error, LeaseLost):
            self.fencing.labels("lease_lost").inc()
        elif isinstance(error, ConflictError) and error.expected_version is not None:
            self.fencing.labels("version_mismatch").inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
