"""Nothing moves: every built-in method gives, bit for bit, the codes committed from the main of
before the method-API refactor (toy and the real Wikipedia release, seed 0, 32 bits, each
dataset's protocol under a budget of 2 epochs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import shared_data

HERE = Path(__file__).parent / "reference_codes"
sys.path.insert(0, str(HERE))
from make_reference_codes import environment  # noqa: E402 - the script lives beside its codes


def test_every_built_in_method_gives_the_committed_codes(tmp_path):
    reference = np.load(HERE / "codes.npz")
    recorded = json.loads(str(reference["environment"]))
    if recorded != environment():
        # bit-identity is a property of one build of torch on one kind of CPU
        pytest.skip(f"reference codes were made under {recorded}, this is {environment()}")
    out = tmp_path / "codes.npz"
    env = {**os.environ, "CMHBENCH_HOME": str(tmp_path / "home")}  # the toy backbone pretrained afresh too
    made = subprocess.run([sys.executable, str(HERE / "make_reference_codes.py"), str(out), str(shared_data("wiki"))],
                          capture_output=True, text=True, env=env, timeout=1200)
    assert made.returncode == 0, made.stderr[-3000:]
    codes = np.load(out)
    keys = [key for key in reference.files if key != "environment"]
    assert sorted(keys) == sorted(key for key in codes.files if key != "environment")
    moved = {key: float((np.unpackbits(reference[key]) != np.unpackbits(codes[key])).mean())
             for key in keys if not np.array_equal(reference[key], codes[key])}
    assert not moved, f"codes moved (share of bits that differ): {moved}"


def test_the_boards_runs_keep_their_identity(prepared_wiki, tmp_path):
    """Every toy v2 and Wikipedia result on the repository's board is planned, from what the result
    records, under the run_id it was written with: hyper-parameters typed by the specs' params
    dataclasses define the same runs as the dicts of before."""
    from cmhbench.request import RunRequest
    from cmhbench.runner import plan

    checked = 0
    for path in sorted((HERE.parent.parent / "leaderboard" / "results").rglob("*.json")):
        result = json.loads(path.read_text())
        if result["dataset"]["name"] == "toy" and result["protocol"]["version"] == 1:
            continue  # toy v1's generator settings are not today's
        image = result["encoders"]["image"]
        budget = result["epoch_override"]
        request = RunRequest(
            method=result["method"]["name"], dataset=result["dataset"]["name"], bits=result["bits"],
            seed=result["seed"], epochs=None if budget == result["protocol"]["epochs"] else budget,
            hparams=result["method"]["hyperparameters"], preset=result["method"]["preset"] or "published",
            dataset_options=result["dataset"].get("options", {}),
            image_encoder=None if image["name"] == "none" else image["name"],
            image_weights=None if image["name"] in ("none", "identity") else image["weights"],
            precision=result.get("precision_requested") or "auto", directions=tuple(result["metrics"]),
            results_dir=tmp_path)
        assert plan(request).run_id == result["run_id"], path
        checked += 1
    assert checked >= 100
