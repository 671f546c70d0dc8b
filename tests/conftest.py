"""Shared fixtures: an isolated model cache, offline Hugging Face, and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


@pytest.fixture(scope="session", autouse=True)
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every test session trains the builtin models once, into its own cache."""
    cache = Path(os.environ.get("HARNESS_TEST_CACHE") or tmp_path_factory.mktemp("harness-cache"))
    os.environ["HARNESS_CACHE"] = str(cache)
    return cache


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess:
    """``harness ARGS`` in a subprocess, as a user would run it."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def write_suite(directory: Path, body: str, name: str = "suite.toml") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(body))
    return path


# A fast [measure] table for tests: timing figures exist but are not the point.
FAST_MEASURE = """
[measure]
batch_sizes = [1, 8]
warmup_s = 0.0
min_time_s = 0.05
min_iterations = 5
max_time_s = 1.0
energy = false
"""


DIGITS_MLP = """
[[models]]
name = "mlp"
source = "builtin"
ref = "digits-mlp"

[[tasks]]
name = "digits"
kind = "classification"
dataset = "digits"
"""


def digits_suite(directory: Path, name: str, methods: str = "", *, suite: str = "",
                 measure: str = FAST_MEASURE) -> Path:
    """A suite of the builtin digits MLP on the digits task, with ``methods`` (TOML)."""
    body = f"[suite]\nname = \"{name}\"\n{textwrap.dedent(suite)}\n{measure}\n{DIGITS_MLP}\n{textwrap.dedent(methods)}"
    return write_suite(directory, body)
