"""End to end through the runner: DCMH learns on toy, interrupted runs resume exactly, provenance."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cmhbench.evaluation import evaluate
from cmhbench.runner import RunRequest, run
from conftest import crash_after_checkpoints
from cmhbench_datasets.toy import open_toy


def random_code_map(options: dict, bits: int, draws: int = 5) -> float:
    dataset = open_toy(options)
    q, r = dataset.labels[dataset.splits["query"]], dataset.labels[dataset.splits["retrieval"]]
    rng = np.random.default_rng(123)
    return float(np.mean([
        evaluate(rng.choice([-1, 1], (len(q), bits)), rng.choice([-1, 1], (len(r), bits)), q, r, device="cpu")["map"]
        for _ in range(draws)]))


def test_dcmh_on_toy_v2(tmp_path):
    """The default `cmhbench run --method dcmh --dataset toy` (protocol v2: pretrained toy-cnn, 120
    epochs, quick preset: batches of 16) learns. Measured (57 s of training on 2 cores): i2t 0.695,
    t2i 0.716 against 0.29 for random codes."""
    outcome = run(RunRequest(method="dcmh", dataset="toy", bits=32, seed=0, device="cpu",
                             results_dir=tmp_path, quiet=True))
    baseline = random_code_map({}, 32)
    result = outcome.result
    assert result["protocol"]["version"] == 2 and result["encoders"]["image"] == {"name": "toy-cnn", "weights": "toy"}
    assert result["method"]["preset"] == "quick" and result["training"]["epochs"] == {"train": {"planned": 120, "run": 120}}
    for direction in ("i2t", "t2i"):
        assert result["metrics"][direction]["map"] > baseline + 0.25, (direction, baseline)


SMALL = dict(method="dcmh", dataset="toy", bits=16, seed=1, epochs=3, device="cpu",
             dataset_options={"size": 200}, quiet=True)


def test_interrupted_run_resumes_to_the_same_result(tmp_path, monkeypatch):
    reference = run(RunRequest(**SMALL, results_dir=tmp_path / "a"))

    crash_after_checkpoints(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        run(RunRequest(**SMALL, results_dir=tmp_path / "b"))
    assert not list((tmp_path / "b").rglob("*bits-seed*.json")), "no result file may exist after a crash"
    assert list((tmp_path / "b" / ".checkpoints").rglob("checkpoint.pt"))

    monkeypatch.undo()
    resumed = run(RunRequest(**SMALL, results_dir=tmp_path / "b"))
    assert resumed.result["training"]["resumed_from"] == {"train": 2}
    assert resumed.result["run_id"] == reference.result["run_id"]
    assert resumed.result["metrics"] == reference.result["metrics"]
    assert resumed.result["training"]["history"] == reference.result["training"]["history"]
    assert not (tmp_path / "b" / ".checkpoints" / resumed.result["run_id"]).exists()


def test_existing_result_is_skipped_unless_forced(tmp_path):
    request = RunRequest(**{**SMALL, "epochs": 1}, results_dir=tmp_path)
    first = run(request)
    again = run(request)
    assert again.skipped and again.path == first.path
    request.force = True
    assert not run(request).skipped


def test_result_file_carries_provenance(tmp_path):
    outcome = run(RunRequest(**{**SMALL, "epochs": 1}, results_dir=tmp_path))
    result = json.loads(outcome.path.read_text())
    assert result["schema_version"] == 2 and len(result["run_id"]) == 64
    assert result["dataset"]["split_sizes"] == {"query": 20, "retrieval": 180, "train": 100}
    assert result["encoders"]["image"] == {"name": "toy-cnn", "weights": "toy"}
    assert set(result["metrics"]) == {"i2t", "t2i"}
    for key in ("train_seconds", "encode_seconds", "evaluate_seconds"):
        assert result["timings"][key] >= 0
    env = result["environment"]
    assert env["torch"] and env["python"] and env["host"] and env["device"] == "cpu"
    # what decides the arithmetic, so that two results of one run can be told apart by environment
    assert env["threads"] >= 1 and env["numpy"] and env["cpu_capability"] and isinstance(env["cpu_flags"], list)
    assert result["created_utc"].endswith("Z") and "command" in result
    assert result["method"]["hyperparameters"]["gamma"] == 1.0


def test_a_checkpoint_of_another_run_is_refused(tmp_path, monkeypatch):
    """Another seed's checkpoint copied into this run's folder: one line, never adopted."""
    import shutil

    from cmhbench.errors import CmhbenchError
    from cmhbench.runner import plan

    crash_after_checkpoints(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        run(RunRequest(**SMALL, results_dir=tmp_path))
    monkeypatch.undo()
    other = RunRequest(**{**SMALL, "seed": 2}, results_dir=tmp_path)
    (source,) = (tmp_path / ".checkpoints").iterdir()
    target = tmp_path / ".checkpoints" / plan(other).run_id
    shutil.copytree(source, target)
    with pytest.raises(CmhbenchError, match=r"checkpoint .* belongs to run .*, not to this run"):
        run(other)
    assert not list(tmp_path.rglob("*bits-seed2*.json"))
