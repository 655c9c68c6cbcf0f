"""Sweeps: grid expansion, skip-if-done, failure isolation, resume after SIGKILL, concurrent sweeps.

The executors are exercised for real: in-process (`local`) and subprocess workers (`local-gpus` with
CPU workers). The Slurm executor has its own tests against a real cluster (test_slurm.py).
"""

from __future__ import annotations

import json
import re
import os
import signal
from pathlib import Path

import pytest

from cmhbench.errors import CmhbenchError
from cmhbench.runner import RunRequest, plan
from cmhbench.sweep.jobs import read_state
from cmhbench.sweep.manifest import read_manifest
from cmhbench.sweep.spec import expand, load_sweep_file, spec_from_mapping
from cmhbench.sweep.status import sweep_status
from conftest import checkpoint_progress, cli_process, result_files, run_cli, wait_for

# tiny toy: 200 pairs at 64 px (AlexNet's smallest comfortable input), a few seconds per job
TINY = {"size": 200, "image_size": 64, "vocabulary": 160}


def _sweep_file(tmp_path: Path, results: Path, **overrides) -> Path:
    content = {"methods": ["ridge-codes"], "datasets": ["toy"], "bits": [16, 32], "seeds": [0],
               "dataset_options": {"toy": TINY}, "results": str(results), "device": "cpu", **overrides}
    path = tmp_path / "sweep.yaml"
    import yaml

    path.write_text(yaml.safe_dump(content))
    return path




def test_grid_expansion_matches_run_ids_of_single_runs(tmp_path):
    toml = tmp_path / "grid.toml"
    toml.write_text(f'methods = ["ridge-codes", "dcmh"]\ndatasets = ["toy"]\nbits = [8, 16]\nseeds = [0, 3]\n'
                    f'results = "{tmp_path / "r"}"\nepochs = 1\n[dataset_options.toy]\nsize = 200\n'
                    f'[hparams.dcmh]\nbatch_size = 16\n')
    jobs = expand(load_sweep_file(toml))
    assert len(jobs) == 2 * 2 * 2
    assert len({j.run_id for j in jobs}) == 8
    one = next(j for j in jobs if j.request["method"] == "dcmh" and j.request["bits"] == 16 and j.request["seed"] == 3)
    direct = plan(RunRequest(method="dcmh", dataset="toy", bits=16, seed=3, epochs=1, hparams={"batch_size": 16},
                             dataset_options={"size": 200}, results_dir=str(tmp_path / "r")))
    assert one.run_id == direct.run_id and one.result_path == str(direct.path)
    # scoring more directions is another run, with the run_id `cmhbench run --directions` gives it
    toml.write_text(toml.read_text().replace("epochs = 1\n", 'epochs = 1\ndirections = ["i2t", "t2i", "i2i"]\n'))
    wider = next(j for j in expand(load_sweep_file(toml)) if j.request["method"] == "dcmh"
                 and j.request["bits"] == 16 and j.request["seed"] == 3)
    direct = plan(RunRequest(method="dcmh", dataset="toy", bits=16, seed=3, epochs=1, hparams={"batch_size": 16},
                             dataset_options={"size": 200}, results_dir=str(tmp_path / "r"),
                             directions=("i2t", "t2i", "i2i")))
    assert wider.run_id == direct.run_id != one.run_id


@pytest.mark.parametrize("content, message", [
    ({"datasets": ["toy"]}, "key 'methods' is missing"),
    ({"methods": ["dcmh"], "datasets": ["toy"], "colour": 1}, "unknown key(s) colour"),
    ({"methods": ["dcmh"], "datasets": ["toy"], "bits": ["x"]}, "key 'bits' must be a list of integers"),
    ({"methods": ["dcmh"], "datasets": ["toy"], "epochs": 0}, "key 'epochs' must be a positive integer"),
    ({"methods": ["dcmh"], "datasets": ["toy"], "hparams": {"ssah": {"alpha": 1}}}, "hparams given for method 'ssah'"),
    ({"methods": ["dcmhh"], "datasets": ["toy"]}, "dcmh"),
    ({"methods": ["dcmh"], "datasets": ["toy"], "directions": ["i2t", "x2y"]},
     "sweep file x.yaml: key 'directions' ['i2t', 'x2y']: expected distinct names among i2t, t2i, i2i, t2t"),
])
def test_bad_sweep_files_name_the_key(tmp_path, content, message):
    with pytest.raises(CmhbenchError, match=None) as info:
        expand(spec_from_mapping(content, "sweep file x.yaml"))
    assert message in str(info.value)


def test_sweep_file_syntax_error_names_the_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("methods = [\n")
    with pytest.raises(CmhbenchError, match="bad.toml is not valid TOML"):
        load_sweep_file(bad)


def test_workers_run_everything_skip_done_and_isolate_a_failure(tmp_path):
    """Two CPU workers; a DCMH job with batch_size 0 fails, the ridge-codes jobs still finish;
    a second invocation runs nothing that is done and reports the failure again."""
    results = tmp_path / "results"
    sweep = _sweep_file(tmp_path, results, methods=["ridge-codes", "dcmh"], bits=[16],
                        hparams={"dcmh": {"batch_size": 0}}, epochs=1, seeds=[0, 1])
    out = run_cli("sweep", str(sweep), "--executor", "local-gpus", "--workers", "2", "--name", "grid")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "2 job(s) failed" in out.stderr and "cmhbench status grid" in out.stderr
    assert "ran 2, already done 0" in out.stdout
    done = result_files(results)
    assert len(done) == 2 and all(json.loads(p.read_text())["method"]["name"] == "ridge-codes" for p in done)

    _, jobs = read_manifest(results / ".sweeps" / "grid.json")
    states = {s.job.label: s for s in sweep_status(jobs)}
    assert [s.state for s in states.values()].count("done") == 2
    failed = [s for s in states.values() if s.state == "failed"]
    assert len(failed) == 2 and all("batch_size" in s.error or "Error" in s.error for s in failed)

    status = run_cli("status", "grid", "--results", str(results))
    assert status.returncode == 0 and "2 done" in status.stdout and "2 failed" in status.stdout
    assert "Traceback" in status.stdout or "Error" in status.stdout

    again = run_cli("sweep", str(sweep), "--executor", "local", "--name", "grid")
    assert "ran 0, already done 2" in again.stdout and again.returncode == 1
    assert again.stdout.count("exists ") == 2 and again.stdout.count("failed dcmh/") == 2
    assert not list(results.rglob("*.partial"))




@pytest.mark.parametrize("executor", [["--executor", "local"], ["--executor", "local-gpus", "--workers", "1"]])
def test_threads_per_job_reach_the_runs(tmp_path, executor):
    """`sweep --threads 1` runs every job on one thread, in process or in a worker (whose default is
    every core: one worker), and the results record it."""
    results = tmp_path / "results"
    sweep = _sweep_file(tmp_path, results)
    out = run_cli("sweep", str(sweep), *executor, "--threads", "1", env={"OMP_NUM_THREADS": "2"})
    assert out.returncode == 0, out.stdout + out.stderr
    files = result_files(results)
    assert len(files) == 2 and {json.loads(p.read_text())["environment"]["threads"] for p in files} == {1}


def test_sigkilled_job_resumes_to_the_uninterrupted_result(tmp_path):
    """A DCMH job of a `local-gpus` sweep (one CPU worker) is SIGKILLed after its first epoch's checkpoint; status
    shows it interrupted; the rerun resumes it and ends with the same metrics and loss history as an
    uninterrupted run of the same job."""
    common = ["--methods", "dcmh", "--datasets", "toy", "--bits", "16", "--seeds", "0", "--epochs", "3",
              "--dataset-opt", "size=200", "--dataset-opt", "vocabulary=160", "--device", "cpu"]
    reference_dir = tmp_path / "reference"
    # as many threads as the one worker gets, so that float sums add up in the same order
    threads = {"OMP_NUM_THREADS": str(os.cpu_count() or 1)}
    reference = run_cli("sweep", *common, "--results", str(reference_dir), "--executor", "local", env=threads)
    assert reference.returncode == 0, reference.stderr

    results = tmp_path / "results"
    sweep = cli_process("sweep", *common, "--results", str(results), "--executor", "local-gpus", "--workers", "1",
                        "--name", "killme", env=threads)
    try:
        _, jobs = wait_for(lambda: (results / ".sweeps" / "killme.json").exists()
                            and read_manifest(results / ".sweeps" / "killme.json"), 120, "the manifest")
        job = jobs[0]
        wait_for(lambda: checkpoint_progress(results, job.run_id) >= 1, 300, "the first checkpoint")
        pid = read_state(str(results), job.run_id)["pid"]
        os.kill(pid, signal.SIGKILL)
        out, err = sweep.communicate(timeout=120)
    finally:
        if sweep.poll() is None:
            sweep.kill()
    assert sweep.returncode == 1 and "failed" in out
    assert not result_files(results)
    states = sweep_status(jobs)
    # killed after its first checkpoint at the earliest (a fast machine may have written more)
    assert states[0].state == "interrupted" and re.search(r"train [1-9]\d* epochs", states[0].detail)

    resumed = run_cli("sweep", *common, "--results", str(results), "--executor", "local-gpus", "--workers", "1",
                      "--name", "killme")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    (after,), (before,) = result_files(results), result_files(reference_dir)
    after, before = json.loads(after.read_text()), json.loads(before.read_text())
    assert after["run_id"] == before["run_id"]
    assert after["training"]["resumed_from"]["train"] >= 1
    assert after["training"]["history"] == before["training"]["history"]
    for direction in ("i2t", "t2i"):
        assert after["metrics"][direction]["map"] == pytest.approx(before["metrics"][direction]["map"], abs=1e-12)
    assert sweep_status(jobs)[0].state == "done"


def test_two_sweeps_at_once_never_run_a_job_twice(tmp_path):
    results = tmp_path / "results"
    sweep = _sweep_file(tmp_path, results, bits=[8, 16, 24, 32], seeds=[0])
    first = cli_process("sweep", str(sweep), "--executor", "local")
    second = cli_process("sweep", str(sweep), "--executor", "local")
    outputs = [p.communicate(timeout=600) for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, outputs
    ran = [line.split()[1] for out, _ in outputs for line in out.splitlines() if line.startswith("done ")]
    assert sorted(ran) == sorted(set(ran)) and len(ran) == 4, outputs
    files = result_files(results)
    assert len(files) == 4
    for path in files:
        json.loads(path.read_text())  # complete, valid JSON
    assert not list(results.rglob("*.partial"))
