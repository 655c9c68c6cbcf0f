"""Issue 15's guarantees that have no better home: output that cannot be injected, limits refused
before training, nothing half-written left behind, one training per run at a time, results
folders that can move, and resumed timings that add up."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch
from conftest import crash_after_checkpoints, run_cli

from cmhbench.errors import CmhbenchError
from cmhbench.fsutil import owner_tag, write_json_atomic
from cmhbench.leaderboard.markdown import escape_cell
from cmhbench.runner import RunRequest, run
from cmhbench.textsafe import clean, safe

# a 50-item training set: at the published rates DCMH's balance-term feedback (lr·batch/N, see
# dcmh_spec.QUICK) diverges within 2 epochs here, so these bookkeeping tests train at a tenth of them
TINY = dict(method="dcmh", dataset="toy", bits=8, seed=0, epochs=1, device="cpu",
            dataset_options={"size": 100}, hparams={"lr_start": 1e-3, "lr_end": 1e-4}, quiet=True)


# --- output cannot be injected ------------------------------------------------------------------

def test_markup_and_control_characters_are_printed_inert(tmp_path):
    """A path holding rich markup and terminal escapes: printed literally, escapes removed."""
    hostile = tmp_path / "[/x] [nan] \x1b]0;owned\x07 \x1b[31mred\r"
    result = run_cli("evaluate", str(hostile / "codes.npz"))
    assert result.returncode == 1
    assert "MarkupError" not in result.stderr and "Traceback" not in result.stderr
    assert "[/x] [nan]" in result.stderr  # nothing read as markup, nothing vanished
    for control in ("\x1b", "\x07", "\r"):
        assert control not in result.stderr


def test_safe_text_helpers():
    assert clean("a\x1b[2Jb\x07c\x9bd\te\nf") == "a[2Jbcd\te\nf"
    from rich.console import Console

    console = Console(record=True, width=200)
    console.print(f"reason: {safe('with values [nan] and [/x] [bold]')}")
    assert "with values [nan] and [/x] [bold]" in console.export_text()


@pytest.mark.parametrize("hostile", [
    "x](http://evil.example) ![img](http://evil.example/a.png)",
    "a | b | c",
    "line\n| injected | row |",
    "`code` *em* _u_ ~s~ <script>alert(1)</script>",
    "\x1b[31mred\x07\r",
])
def test_markdown_cells_cannot_add_links_images_rows_or_html(hostile):
    cell = escape_cell(hostile)
    assert "\n" not in cell and "\r" not in cell and "\x1b" not in cell and "\x07" not in cell
    assert "<" not in cell and ">" not in cell
    unescaped = [ch for i, ch in enumerate(cell) if ch in "[]()!|`*_~" and (i == 0 or cell[i - 1] != "\\")]
    assert not unescaped, (cell, unescaped)


# --- limits refused before training --------------------------------------------------------------

def test_bits_beyond_the_evaluators_limit_are_refused_at_planning(tmp_path):
    from cmhbench.runner import plan

    with pytest.raises(CmhbenchError, match="--bits 40000: the evaluator scores codes of at most 32767 bits"):
        plan(RunRequest(**{**TINY, "bits": 40000}, results_dir=tmp_path))


def test_cvh_bits_beyond_its_feature_width_are_refused_before_training(prepared_wiki, tmp_path, monkeypatch):
    """Wikipedia's 128-d image features give CVH at most 128 bits: 129 is refused, naming the limit,
    before any solve."""
    import cmhbench_methods.cvh.model as cvh

    def never(*args, **kwargs):
        raise AssertionError("CVH was trained")

    monkeypatch.setattr(cvh, "cvh_projections", never)
    with pytest.raises(CmhbenchError, match=r"--bits 129: cvh gives at most 128 bits on wiki \(128-d image"):
        run(RunRequest(method="cvh", dataset="wiki", bits=129, seed=0, device="cpu", results_dir=tmp_path,
                       quiet=True))
    assert not list(tmp_path.rglob("*.json"))


# --- nothing half-written left behind ------------------------------------------------------------

def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_partial_files_of_dead_writers_are_removed_by_the_next_write(tmp_path):
    target = tmp_path / "result.json"
    namespace_and_host = owner_tag().partition("-")[2]  # "<pid namespace>@<host>"
    dead = tmp_path / f".result.json.{_dead_pid()}-{namespace_and_host}.k2j4h1x0.partial"
    alive = tmp_path / f".result.json.{os.getpid()}-{namespace_and_host}.a8d7f6s5.partial"  # being written now
    # a dead pid of another pid namespace on the same host (another container): not ours to judge
    other_namespace = tmp_path / f".result.json.{_dead_pid()}-1@{namespace_and_host.partition('@')[2]}.n1n2n3n4.partial"
    foreign_old = tmp_path / ".result.json.4242-1@elsewhere.q1w2e3r4.partial"
    foreign_new = tmp_path / ".result.json.4343-1@elsewhere.t5y6u7i8.partial"
    unrelated = tmp_path / ".other.json.1-1@x.abcdefgh.partial"
    for path in (dead, alive, other_namespace, foreign_old, foreign_new, unrelated):
        path.write_text("half")
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(foreign_old, (two_days_ago, two_days_ago))
    write_json_atomic(target, {"ok": True})
    assert json.loads(target.read_text()) == {"ok": True}
    assert not dead.exists() and not foreign_old.exists()
    assert alive.exists() and other_namespace.exists() and foreign_new.exists() and unrelated.exists()


def test_site_build_clears_abandoned_staging_and_never_leaves_out_missing(tmp_path):
    from leaderboard_fixtures import make_result, write_result

    from cmhbench.leaderboard.site import build_site

    results = tmp_path / "results"
    write_result(results, make_result())
    out = tmp_path / "site"
    abandoned = tmp_path / f".site.{_dead_pid()}-{owner_tag().partition('-')[2]}.zz99yy88"
    abandoned.mkdir()
    (abandoned / "index.html").write_text("half")
    interrupted = tmp_path / ".site.old"  # a swap killed between its two renames
    interrupted.mkdir()
    (interrupted / "index.html").write_text("previous")
    build_site([results], out)
    assert (out / "index.html").read_text() != "previous"
    assert not abandoned.exists() and not interrupted.exists()
    first = (out / "README.md").read_text()
    build_site([results], out)  # a rebuild over an existing site swaps in one step
    assert (out / "README.md").read_text() == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results", "site"]


# --- one training per run at a time --------------------------------------------------------------

def test_an_identical_run_waits_for_the_first_and_reuses_its_result(tmp_path):
    """The second of two identical runs does not train: it waits on the run's lock and then finds
    the first one's result. Here this test holds the lock, as the first process would."""
    from cmhbench.results.lock import run_lock
    from cmhbench.runner import plan

    request = RunRequest(**TINY, results_dir=tmp_path)
    planned = plan(request)
    holder = run_lock(tmp_path, planned.run_id)
    holder.acquire()
    waited, outcome = threading.Event(), {}
    second = threading.Thread(target=lambda: outcome.setdefault("value", run(request, on_wait=lambda m: waited.set())))
    second.start()
    assert waited.wait(60), "the second run did not notice the first"
    first = run(request, hold_lock=False)  # the holder trains and writes the result
    holder.release()
    second.join(120)
    assert outcome["value"].skipped and outcome["value"].path == first.path
    assert not list((tmp_path / ".jobs").glob("*.lock")), "a finished run leaves no lock file"


# --- results folders can move ---------------------------------------------------------------------

def test_status_reads_a_moved_results_folder(tmp_path):
    from cmhbench.sweep.launch import launch
    from cmhbench.sweep.spec import spec_from_mapping

    spec = spec_from_mapping({"methods": "cmfh", "datasets": "toy", "bits": "8", "seeds": "0",
                              "dataset_options": {"toy": {"size": 100}}, "device": "cpu",
                              "results": str(tmp_path / "first"), "name": "moved"}, "test")
    launch(spec, "local")
    manifest = json.loads((tmp_path / "first" / ".sweeps" / "moved.json").read_text())
    assert all(not os.path.isabs(job["result_path"]) for job in manifest["jobs"])
    shutil.move(tmp_path / "first", tmp_path / "second")
    result = run_cli("status", "--results", str(tmp_path / "second"), "--json")
    assert result.returncode == 0, result.stderr
    [sweep] = json.loads(result.stdout)
    assert sweep["counts"]["done"] == 1 and sum(sweep["counts"].values()) == 1
    assert sweep["jobs"][0]["state"] == "done"
    assert not list((tmp_path / "second" / ".jobs").glob("*.lock")), "a finished sweep leaves no lock files"


def test_status_of_a_missing_results_folder_says_so(tmp_path):
    result = run_cli("status", "--results", str(tmp_path / "nowhere"))
    assert result.returncode == 1
    assert "results folder" in result.stderr and "does not exist" in result.stderr


# --- resumed timings add up -----------------------------------------------------------------------

def test_a_resumed_runs_training_time_adds_its_segments(tmp_path, monkeypatch):
    request = dict(TINY, epochs=3)
    crash_after_checkpoints(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        run(RunRequest(**request, results_dir=tmp_path))
    [checkpoint] = (tmp_path / ".checkpoints").rglob("checkpoint.pt")
    saved = torch.load(checkpoint, weights_only=False)
    first_segment, first_checkpoints = saved["train_seconds"], saved["checkpoint_seconds"]
    assert first_segment > first_checkpoints > 0  # the first checkpoint's writing is in the second's state
    monkeypatch.undo()
    resumed = run(RunRequest(**request, results_dir=tmp_path))
    timings = resumed.result["timings"]
    assert timings["train_segments"] == 2
    assert timings["train_seconds"] >= first_segment
    # checkpoint time, like training time, counts the earlier segment's too
    assert timings["train_seconds"] > timings["checkpoint_seconds"] > first_checkpoints


# --- evaluator inputs -----------------------------------------------------------------------------

def test_label_tensors_that_require_grad_are_accepted():
    from cmhbench.evaluation import evaluate

    rng = np.random.default_rng(0)
    codes_q, codes_r = rng.choice([-1, 1], (5, 8)), rng.choice([-1, 1], (9, 8))
    labels_q, labels_r = rng.integers(0, 2, (5, 3)), rng.integers(0, 2, (9, 3))
    reference = evaluate(codes_q, codes_r, labels_q, labels_r, device="cpu")
    as_tensors = evaluate(torch.tensor(codes_q, dtype=torch.float32, requires_grad=True), codes_r,
                          torch.tensor(labels_q, dtype=torch.float32, requires_grad=True),
                          torch.tensor(labels_r, dtype=torch.float32), device="cpu")
    assert as_tensors == reference
    class_indices = evaluate(codes_q, codes_r, torch.tensor([0, 1, 2, 0, 1]), torch.arange(9) % 3, device="cpu")
    assert class_indices["num_queries"] == 5


def test_a_method_state_that_cannot_be_saved_is_one_line_naming_it(tmp_path):
    from cmhbench.train.session import TrainingSession

    session = TrainingSession(device=torch.device("cpu"), seed=0, checkpoint_dir=tmp_path, run_id="r")
    method = type("Unsaveable", (), {"state_dict": lambda self: {"weights": torch.zeros(2), "hook": lambda: 1}})()
    session.bind(method)
    with pytest.raises(CmhbenchError) as info:
        session.save_checkpoint()
    message = str(info.value)
    assert "\n" not in message and "method Unsaveable" in message and "state_dict()['hook'] (a function)" in message
    assert not list(tmp_path.iterdir()), "nothing half-written is left"
