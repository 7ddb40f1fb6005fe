"""Liveness policies per agent type, from code or a tether.toml."""

from __future__ import annotations

from pathlib import Path

import pytest

from tether import ConfigurationError, OnTimeout, Policies, Policy


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tether.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults() -> None:
    policy = Policy()
    assert (policy.timeout, policy.soft_deadline, policy.on_timeout, policy.max_recoveries) == (
        60.0,
        30.0,
        OnTimeout.RECOVER,
        3,
    )


def test_suspect_after_overrides_the_half_timeout_default() -> None:
    assert Policy(timeout=10, suspect_after=8).soft_deadline == 8
    assert Policy(timeout=10).soft_deadline == 5


@pytest.mark.parametrize(
    ("policy", "recoveries", "expected"),
    [
        (Policy(max_recoveries=2), 0, True),
        (Policy(max_recoveries=2), 1, True),
        (Policy(max_recoveries=2), 2, False),
        (Policy(max_recoveries=0), 0, False),
        (Policy(on_timeout=OnTimeout.FAIL), 0, False),
    ],
)
def test_can_recover_counts_recoveries(policy: Policy, recoveries: int, expected: bool) -> None:
    assert policy.can_recover(recoveries) is expected


def test_types_without_an_entry_get_the_default() -> None:
    tutor = Policy(timeout=5)
    policies = Policies(Policy(timeout=99), {"tutor": tutor})
    assert policies.for_type("tutor") is tutor
    assert policies.for_type("grader").timeout == 99


def test_from_toml_reads_default_and_per_type_tables(tmp_path: Path) -> None:
    path = _toml(
        tmp_path,
        """
        [policies.default]
        timeout = 120
        max_recoveries = 5

        [policies.grader]
        timeout = 30.5
        suspect_after = 10
        on_timeout = "fail"

        [other_section]
        ignored = true
        """,
    )
    policies = Policies.from_toml(path)
    assert policies.default == Policy(timeout=120, max_recoveries=5)
    grader = policies.for_type("grader")
    assert (grader.timeout, grader.suspect_after, grader.on_timeout) == (30.5, 10, OnTimeout.FAIL)
    assert grader.max_recoveries == 5  # inherited from [policies.default]
    assert policies.for_type("tutor") == policies.default


def test_a_file_without_policies_gives_the_built_in_default(tmp_path: Path) -> None:
    assert Policies.from_toml(_toml(tmp_path, "[store]\nurl = 'memory://'\n")).default == Policy()


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("[policies.tutor]\ntimeot = 5\n", ["policies.tutor", "timeot"]),
        ("[policies.default]\nretries = 1\n", ["policies.default", "retries"]),
        ("[policies.tutor]\non_timeout = 'explode'\n", ["policies.tutor", "on_timeout"]),
        ("[policies.tutor]\ntimeout = 0\n", ["policies.tutor", "timeout"]),
        ("[policies.tutor]\ntimeout = -1\n", ["policies.tutor", "timeout"]),
        ("[policies.tutor]\ntimeout = 'soon'\n", ["policies.tutor", "timeout"]),
        ("[policies.tutor]\ntimeout = true\n", ["policies.tutor", "timeout"]),
        ("[policies.tutor]\ntimeout = nan\n", ["policies.tutor", "timeout"]),
        ("[policies.tutor]\ntimeout = inf\n", ["policies.tutor", "timeout"]),
        ("[policies.tutor]\ntimeout = 1e12\n", ["policies.tutor", "timeout"]),
        ("[policies.tutor]\nsuspect_after = 61\n", ["policies.tutor", "suspect_after"]),
        ("[policies.tutor]\nsuspect_after = 'x'\n", ["policies.tutor", "suspect_after"]),
        ("[policies.tutor]\nmax_recoveries = -1\n", ["policies.tutor", "max_recoveries"]),
        ("[policies.tutor]\nmax_recoveries = 1.5\n", ["policies.tutor", "max_recoveries"]),
        ("[policies.tutor]\nmax_recoveries = '3'\n", ["policies.tutor", "max_recoveries"]),
        ("[policies.tutor]\nmax_recoveries = false\n", ["policies.tutor", "max_recoveries"]),
        ("[policies]\ntutor = 5\n", ["policies.tutor"]),
    ],
)
def test_bad_policy_files_name_the_offending_key(tmp_path: Path, text: str, names: list[str]) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Policies.from_toml(_toml(tmp_path, text))
    for name in names:
        assert name in str(caught.value)


def test_unreadable_toml_is_a_configuration_error_naming_the_file(tmp_path: Path) -> None:
    path = _toml(tmp_path, "[policies.tutor\ntimeout = 5\n")
    with pytest.raises(ConfigurationError, match=r"tether\.toml"):
        Policies.from_toml(path)
    with pytest.raises(ConfigurationError, match=r"missing\.toml"):
        Policies.from_toml(tmp_path / "missing.toml")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"timeout": 0},
        {"timeout": True},
        {"timeout": 10, "suspect_after": 11},
        {"suspect_after": 0},
        {"max_recoveries": -1},
        {"max_recoveries": 2.0},
        {"on_timeout": "retry"},
    ],
)
def test_invalid_policies_in_code_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        Policy(**kwargs)  # type: ignore[arg-type]


def test_on_timeout_given_as_text_behaves_like_the_enum() -> None:
    policy = Policy(on_timeout="recover")  # type: ignore[arg-type]
    assert policy.on_timeout is OnTimeout.RECOVER
    assert policy.can_recover(0)
