"""For tests that use Tether as a user does: real processes, the real `tether` command
(`run_tether("ls", "--store", url, cwd=tmp_path)`), and the original seed module."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

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


def seed_module_path() -> Path:
    """shared/seed/session_models.py beside the repository (locally ../shared; in CI a copy of
    shared/ next to the clone). Fails the test, naming every place it looked, when missing."""
    candidates = [parent / SEED_RELATIVE for parent in REPO.parents]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    searched = "\n  ".join(str(c) for c in candidates)
    pytest.fail(f"the seed module is missing; looked for it at:\n  {searched}", pytrace=False)


def load_seed_module() -> ModuleType:
    """The original session_models.py, imported from its file (once per process)."""
    if SEED_MODULE_NAME in sys.modules:
        return sys.modules[SEED_MODULE_NAME]
    spec = importlib.util.spec_from_file_location(SEED_MODULE_NAME, seed_module_path())
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module
