"""Settings come from TETHER_* variables over one table of defaults; bad values name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from tether import ConfigurationError, PayloadTooLarge, Policy, SessionManager
from tether.core.config import Settings
from tether.core.validation import DEFAULT_MAX_PAYLOAD_BYTES


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("TETHER_STORE_URL", "TETHER_MAX_PAYLOAD_BYTES", "TETHER_POLICY_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_defaults_are_the_embedded_sqlite_store_and_one_mib() -> None:
    settings = Settings.from_env()
    assert settings.store_url == "sqlite:///tether.db"
    assert settings.max_payload_bytes == DEFAULT_MAX_PAYLOAD_BYTES
    assert settings.policies.default == Policy()


def test_an_explicit_url_beats_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TETHER_STORE_URL", "memory://")
    assert Settings.from_env().store_url == "memory://"
    assert Settings.from_env("sqlite:///other.db").store_url == "sqlite:///other.db"


@pytest.mark.parametrize("bad", ["lots", "0", "-5", "1.5"])
def test_a_bad_payload_limit_names_the_variable(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    monkeypatch.setenv("TETHER_MAX_PAYLOAD_BYTES", bad)
    with pytest.raises(ConfigurationError, match="TETHER_MAX_PAYLOAD_BYTES"):
        Settings.from_env()


def test_the_payload_limit_reaches_the_manager(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TETHER_MAX_PAYLOAD_BYTES", "64")
    manager = SessionManager("memory://", worker_id="w")
    sid = manager.create("tutor", "u").session_id
    with pytest.raises(PayloadTooLarge) as caught:
        manager.checkpoint(sid, "step", {"x": "a" * 64})
    assert caught.value.limit == 64


def test_a_tether_toml_in_the_working_directory_is_read(tmp_path: Path) -> None:
    (tmp_path / "tether.toml").write_text("[policies.tutor]\ntimeout = 7\n", encoding="utf-8")
    assert Settings.from_env().policies.for_type("tutor").timeout == 7


def test_a_named_policy_file_must_exist(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TETHER_POLICY_FILE", str(tmp_path / "nowhere.toml"))
    with pytest.raises(ConfigurationError, match="TETHER_POLICY_FILE"):
        Settings.from_env()


def test_an_unknown_store_url_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="unknown store URL"):
        SessionManager("mysql://localhost/x")


@pytest.mark.parametrize("bad", [0, -1, True, "1024", 1.5])
def test_a_bad_payload_limit_in_code_is_a_configuration_error(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="max_payload_bytes"):
        SessionManager("memory://", worker_id="w", max_payload_bytes=bad)  # type: ignore[arg-type]


def test_a_payload_limit_in_code_beats_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TETHER_MAX_PAYLOAD_BYTES", "1000000")
    manager = SessionManager("memory://", worker_id="w", max_payload_bytes=32)
    sid = manager.create("tutor", "u").session_id
    with pytest.raises(PayloadTooLarge) as caught:
        manager.checkpoint(sid, "step", {"x": "a" * 32})
    assert caught.value.limit == 32
