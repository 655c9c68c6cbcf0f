"""A run says what it is doing: records when output is not a terminal, epoch losses on request, and
`cmhbench status --run` for one run from its checkpoint."""

from __future__ import annotations

import io
import json
import re

import pytest

from cmhbench.runner import RunRequest, run
from cmhbench.progress import TrainingProgress
from conftest import crash_after_checkpoints, run_cli

TINY = dict(method="dcmh", dataset="toy", bits=8, seed=0, epochs=3, device="cpu", preset="tiny",
            dataset_options={"size": 100})


def test_redirected_output_gets_timed_records_and_losses_on_request(tmp_path):
    ran = run_cli("run", "-m", "dcmh", "-d", "toy", "-b", "8", "--epochs", "3", "--preset", "tiny",
                  "--dataset-opt", "size=100", "--device", "cpu", "--results", str(tmp_path), "--log-losses")
    assert ran.returncode == 0, ran.stderr
    lines = ran.stderr.splitlines()
    record = re.compile(r"^cmhbench \d\d:\d\d:\d\d dcmh toy 8b seed 0: ")
    assert lines and all(record.match(line) for line in lines), ran.stderr
    assert any("train: 3 of 3 epochs to run" in line for line in lines)
    epochs = [line for line in lines if re.search(r"train epoch \d: text_loss=\S+ image_loss=\S+ objective=", line)]
    assert len(epochs) == 3, ran.stderr
    assert any("encoding query and retrieval splits: done" in line for line in lines)


def test_a_periodic_record_gives_epoch_step_rate_eta_and_loss():
    stream = io.StringIO()
    progress = TrainingProgress("m d 8b seed 0", mode="log", interval=0.0, stream=stream)
    progress.stage_started("train", total=4, done=0)
    progress.items(32)
    progress.epoch_done("train", 0)
    progress.logged({"stage": "train", "epoch": 0, "loss": 0.25})
    progress.items(32)
    last = stream.getvalue().splitlines()[-1]
    assert re.search(r"train epoch 2/4 · step 1 · [\d,]+ items/s · ETA \d+s · loss=0\.25$", last), last


def test_quiet_prints_nothing():
    stream = io.StringIO()
    progress = TrainingProgress("x", mode="quiet", log_losses=True, interval=0.0, stream=stream)
    progress.stage_started("train", 2, 0)
    progress.logged({"stage": "train", "epoch": 0, "loss": 1.0})
    with progress.phase("scoring"):
        pass
    assert stream.getvalue() == ""


def test_status_of_one_run_reads_its_checkpoint(tmp_path, monkeypatch):
    crash_after_checkpoints(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        run(RunRequest(**TINY, results_dir=tmp_path, quiet=True))
    monkeypatch.undo()
    [folder] = (tmp_path / ".checkpoints").iterdir()
    shown = run_cli("status", "--results", str(tmp_path), "--run", folder.name[:10], "--json")
    assert shown.returncode == 0, shown.stderr
    status = json.loads(shown.stdout)
    assert status["state"] == "interrupted" and status["run_id"] == folder.name
    assert status["stages"] == {"train": {"run": 2, "planned": 3}}
    assert status["last_log"]["epoch"] == 1 and "objective" in status["last_log"]

    finished = run(RunRequest(**TINY, results_dir=tmp_path, quiet=True))
    shown = run_cli("status", "--results", str(tmp_path), "--run", finished.result["run_id"][:12])
    assert shown.returncode == 0 and f"run {finished.result['run_id']}: done" in shown.stdout, shown.stdout
    assert "train: 3 of 3 epochs" in shown.stdout and "last logged: train epoch 3: " in shown.stdout, shown.stdout
    unknown = run_cli("status", "--results", str(tmp_path), "--run", "abcdef12")
    assert unknown.returncode == 1 and "no run abcdef12" in unknown.stderr
