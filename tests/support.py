"""For tests that use Tether as a user does: real processes, the real `tether` command
(`run_tether("ls", "--store", url, cwd=tmp_path)`), and the seed format (committed fixtures, and the
original seed module where it is at hand)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
SEED_RELATIVE = Path("shared/seed/session_models.py")
SEED_MODULE_NAME = "tether_seed_session_models"


def subprocess_env(**overrides: str | None) -> dict[str, str]:
    """This environment, with this checkout's src/ first on PYTHONPATH and no TETHER_STORE_URL
    inherited (a test names its store); an override of None removes that variable."""
    env = {k: v for k, v in os.environ.items() if k != "TETHER_STORE_URL"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH")) if p)
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def run_tether(
    *args: str,
    cwd: Path,
    input: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """`python -m tether ARGS` (what the `tether` script runs); output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "tether", *args],
        cwd=cwd,
        env=env if env is not None else subprocess_env(),
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


SEED_FIXTURES = REPO / "tests" / "fixtures" / "seed"


def seed_fixture(name: str) -> list[dict[str, Any]]:
    """The sessions of tests/fixtures/seed/NAME.jsonl, as the seed's `to_dict()` wrote them."""
    lines = (SEED_FIXTURES / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def seed_module_path() -> Path | None:
    """shared/seed/session_models.py beside the repository (../shared on the team's machines and in
    CI), or None."""
    return next((p / SEED_RELATIVE for p in REPO.parents if (p / SEED_RELATIVE).is_file()), None)


def load_seed_module() -> ModuleType:
    """The original session_models.py, imported from its file (once per process). Where it is
    missing the test is skipped, a user's clone has none, except under TETHER_REQUIRE_SEED=1
    (`.ci/run`), where it fails."""
    if SEED_MODULE_NAME in sys.modules:
        return sys.modules[SEED_MODULE_NAME]
    path = seed_module_path()
    if path is None:
        reason = f"the seed module is not beside this checkout (looked for ../{SEED_RELATIVE})"
        if os.environ.get("TETHER_REQUIRE_SEED") == "1":
            pytest.fail(f"{reason}; TETHER_REQUIRE_SEED=1 requires it", pytrace=False)
        pytest.skip(reason)
    spec = importlib.util.spec_from_file_location(SEED_MODULE_NAME, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module
