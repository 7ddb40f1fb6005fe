"""Retention policies: how tether.toml writes them, and which rules a pass applies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tether import ConfigurationError, Policies, Policy, State
from tether.core.retention import RetentionReport, RetentionRule, Retired
from tether.core.wire import retention_from_json, retention_to_json
from tether.flows.retention import rules

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_periods_are_written_as_durations_or_seconds() -> None:
    policies = Policies.from_mapping(
        {"default": {"retain_completed": "30d", "retain_failed": 7200}, "audit": {"retain_completed": "2w"}}
    )
    assert policies.default.retain_completed == 30 * 86_400
    assert policies.default.retain_failed == 7200
    assert policies.for_type("audit").retain_completed == 14 * 86_400
    assert policies.for_type("audit").retain_failed == 7200  # inherited, like every unset key


@pytest.mark.parametrize("bad", ["30x", "", "-1d", 0, -5, True, "1.5d"])
def test_a_bad_period_names_its_key(bad: object) -> None:
    with pytest.raises(ConfigurationError, match=r"policies\.tutor\.retain_failed"):
        Policies.from_mapping({"tutor": {"retain_failed": bad}})


def test_rules_cover_each_type_once() -> None:
    policies = Policies(
        default=Policy(retain_completed=60.0),
        by_type={"audit": Policy(retain_failed=120.0), "forever": Policy()},
    )
    assert rules(policies, NOW) == [
        RetentionRule(State.COMPLETED, NOW - timedelta(seconds=60), None, frozenset({"audit", "forever"})),
        RetentionRule(State.FAILED, NOW - timedelta(seconds=120), "audit"),
    ]
    assert rules(Policies(), NOW) == []


def test_a_report_survives_the_wire() -> None:
    report = RetentionReport(False, (Retired(RetentionRule(State.FAILED, NOW, "audit"), ("a", "b")),))
    assert retention_from_json(retention_to_json(report)) == report
    assert retention_to_json(report)["removed"] == 2
