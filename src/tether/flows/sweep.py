"""Which sessions count as stale: the filter behind `stale()` and the supervisor's sweep."""

from __future__ import annotations

from datetime import datetime, timedelta

from tether.core.errors import ValidationError
from tether.core.model import Liveness, SessionFilter
from tether.core.validation import check_optional_text, check_positive


def stale_filter(
    now: datetime,
    no_heartbeat_for: float | timedelta | None,
    paused_for: float | timedelta | None,
    liveness: Liveness | str | None,
    *,
    agent_type: str | None,
    user_id: str | None,
) -> SessionFilter:
    """The stale-session query as a filter whose every field the stores index."""
    level = _liveness(liveness)
    return SessionFilter(
        user_id=check_optional_text("user_id", user_id),
        agent_type=check_optional_text("agent_type", agent_type),
        heartbeat_before=_ago(now, "no_heartbeat_for", no_heartbeat_for),
        paused_before=_ago(now, "paused_for", paused_for),
        suspect_at_or_before=now if level is Liveness.SUSPECT else None,
        lease_expired_at=now if level is Liveness.DEAD else None,
    )


def _ago(now: datetime, field: str, value: float | timedelta | None) -> datetime | None:
    if isinstance(value, timedelta):
        value = value.total_seconds()
    seconds = check_positive(field, value)
    return None if seconds is None else now - timedelta(seconds=seconds)


def _liveness(value: Liveness | str | None) -> Liveness | None:
    if value is None or (isinstance(value, Liveness) and value is not Liveness.HEALTHY):
        return value
    if value in (Liveness.SUSPECT.value, Liveness.DEAD.value):
        return Liveness(value)
    raise ValidationError("liveness", f"{value!r} is not 'suspect' or 'dead'")
