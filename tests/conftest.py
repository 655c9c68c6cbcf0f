"""Shared fixtures: an isolated cache folder, the real data in ../shared/data, CLI runners."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads OpenMP: as cmhbench/__init__.py
import torch  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
#: the real test data (the Wikipedia release, MIRFLICKR-25K labels): CMHBENCH_TEST_DATA, else
#: ../shared/data beside the repository (where CI has it)
SHARED_DATA = Path(os.environ.get("CMHBENCH_TEST_DATA") or REPO_ROOT.parent / "shared" / "data")

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/reference_metrics.py


def shared_data(*parts: str) -> Path:
    """A file of the real test data. Missing, the test skips (a user's clone has no ../shared),
    or fails where CMHBENCH_REQUIRE_TEST_DATA=1 (CI, which has the data)."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        message = (f"real test data not found at {path}: set CMHBENCH_TEST_DATA to the folder holding "
                   "wiki/ and mirflickr25k-meta/")
        if os.environ.get("CMHBENCH_REQUIRE_TEST_DATA") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """Every test session generates and prepares datasets in its own cache folder."""
    home = tmp_path_factory.mktemp("cmhbench-home")
    os.environ["CMHBENCH_HOME"] = str(home)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    yield home


#: the real `cmhbench` console entry point, as a command line
CLI = [sys.executable, "-c", "from cmhbench.cli import main; main()"]


def run_cli(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the real `cmhbench` console entry point in a subprocess."""
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env={**os.environ, **(env or {})},
                          cwd=cwd, timeout=900)


def cli_process(*args: str, env: dict | None = None) -> subprocess.Popen:
    """Start the `cmhbench` entry point in the background (stdout and stderr captured as text)."""
    return subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})


def checkpoint_progress(results: Path, run_id: str, stage: str = "train") -> int:
    """Epochs of ``stage`` a run's last checkpoint holds (0 before the first one)."""
    path = Path(results) / ".checkpoints" / run_id / "progress.json"
    try:
        return json.loads(path.read_text())["progress"].get(stage, 0)
    except (FileNotFoundError, json.JSONDecodeError):
        return 0


@pytest.fixture(scope="session")
def prepared_wiki() -> str:
    """The real Wikipedia release prepared once per session in the session's cache folder."""
    from cmhbench.data.prepare import prepare
    from cmhbench_datasets.standard import PROFILES

    prepare(PROFILES["wiki"], [shared_data("wiki")])
    return os.environ["CMHBENCH_HOME"]


def wait_for(predicate, timeout: float, what: str):
    """Poll ``predicate`` until it returns something true (returned), or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def result_files(folder: Path) -> list[Path]:
    """The result files under a results folder (its hidden bookkeeping folders left out)."""
    return sorted(p for p in folder.rglob("*.json")
                  if not any(part.startswith(".") for part in p.relative_to(folder).parts))


gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def crash_after_checkpoints(monkeypatch, count: int) -> None:
    """Make the run die (KeyboardInterrupt) right after its ``count``-th checkpoint is written, as
    a killed job would; undo with ``monkeypatch.undo()``."""
    from cmhbench.train.session import TrainingSession

    original, saved = TrainingSession.save_checkpoint, {"n": 0}

    def crash(self):
        original(self)
        saved["n"] += 1
        if saved["n"] == count:
            raise KeyboardInterrupt("simulated crash")

    monkeypatch.setattr(TrainingSession, "save_checkpoint", crash)
