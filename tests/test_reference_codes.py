"""Nothing moves: every built-in method gives, bit for bit, the codes the main of before the
method-API refactor (commit REFERENCE_COMMIT) gives, on toy and on the real Wikipedia release (seed
0, 32 bits, each dataset's protocol under a budget of 2 epochs). Both trees run the same script,
side by side, each in a fresh CMHBENCH_HOME (the toy backbone's pretraining is compared too)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO_ROOT, shared_data

HERE = Path(__file__).parent / "reference_codes"
SCRIPT = HERE / "make_reference_codes.py"
#: the last commit before the method-API refactor
REFERENCE_COMMIT = "8481844f36383a813e243b7d2e51a429b8cb0a38"


def _old_tree(tmp_path: Path) -> Path:
    """The reference commit's tree, exported from this checkout's history."""
    target = tmp_path / "before"
    target.mkdir()
    try:
        archive = subprocess.run(["git", "-C", str(REPO_ROOT), "archive", REFERENCE_COMMIT],
                                 capture_output=True, check=True, timeout=120).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"commit {REFERENCE_COMMIT[:12]} is not in this checkout's history ({exc}); clone with history")
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True, timeout=120)
    return target


def _start(tree: Path | None, out: Path, home: Path) -> subprocess.Popen:
    env = {**os.environ, "CMHBENCH_HOME": str(home)}
    if tree is not None:  # the old packages first on the path, ahead of the installed ones
        env["PYTHONPATH"] = os.pathsep.join(str(tree / p) for p in ("", "plugins", "datasets"))
    return subprocess.Popen([sys.executable, str(SCRIPT), str(out), str(shared_data("wiki"))], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_every_built_in_method_gives_the_codes_of_before(tmp_path):
    old = _old_tree(tmp_path)
    runs = {name: _start(tree, tmp_path / f"{name}.npz", tmp_path / f"home-{name}")
            for name, tree in (("before", old), ("now", None))}
    for name, process in runs.items():
        _, stderr = process.communicate(timeout=1200)
        assert process.returncode == 0, f"{name}: {stderr[-3000:]}"
    before, now = (np.load(tmp_path / f"{name}.npz") for name in ("before", "now"))
    assert json.loads(str(before["environment"])) == json.loads(str(now["environment"]))
    keys = [key for key in before.files if key != "environment"]
    assert len(keys) == 56 and sorted(keys) == sorted(key for key in now.files if key != "environment")
    moved = {key: float((np.unpackbits(before[key]) != np.unpackbits(now[key])).mean())
             for key in keys if not np.array_equal(before[key], now[key])}
    assert not moved, f"codes moved (share of bits that differ): {moved}"


def test_the_boards_runs_keep_their_identity(prepared_wiki, tmp_path):
    """Every toy and Wikipedia result on the repository's board is planned, from what the result
    records, under the run_id it was written with: hyper-parameters typed by the specs' params
    dataclasses define the same runs as the dicts of before."""
    from cmhbench.results import RunResult
    from cmhbench.results.reproduce import request_of_result
    from cmhbench.runner import plan

    checked = 0
    from cmhbench.leaderboard.load import result_files

    for path in result_files([HERE.parent.parent / "leaderboard" / "results"]):  # not the sweeps' bookkeeping
        result = json.loads(path.read_text())
        request = request_of_result(RunResult.from_dict(result), tmp_path)
        assert plan(request).run_id == result["run_id"], path
        checked += 1
    assert checked >= 100
