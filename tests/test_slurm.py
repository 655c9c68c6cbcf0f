"""`cmhbench sweep --executor slurm` against a real single-node Slurm cluster (tests/slurm_cluster.py).

The cluster runs without accounting (no sacct), as many small clusters do. Each test drives the CLI
as a user would and reads the outcome from the results folder and from Slurm itself.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from cmhbench.sweep import slurm
from conftest import checkpoint_progress, cli_process, result_files, run_cli, wait_for
from slurm_cluster import PARTITION, skip_or_fail_without_slurm, start_cluster

TINY = ["--dataset-opt", "size=200", "--dataset-opt", "vocabulary=160"]
CLUSTER_OPTIONS = ["--executor", "slurm", "--partition", PARTITION, "--time", "10", "--cpus-per-job", "1",
                   "--mem-gb", "1"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    skip_or_fail_without_slurm()
    started = start_cluster(tmp_path_factory.mktemp("slurm"))
    yield started
    started.stop()


@pytest.fixture
def env(cluster):
    """The CLI's environment: the cluster's SLURM_CONF, a short wait between looks at the queue and
    a short grace before a task gone from the queue without a result counts as failed."""
    yield {**cluster.env, "CMHBENCH_SLURM_POLL_SECONDS": "1", "CMHBENCH_SLURM_GRACE_SECONDS": "2"}
    cluster.cancel_all()  # a failed test leaves no job behind for the next one


def _status(results: Path, env: dict) -> list[dict]:
    out = run_cli("status", "--results", str(results), "--json", env=env)
    assert out.returncode == 0, out.stderr
    return [job for sweep in json.loads(out.stdout) for job in sweep["jobs"]]


def _submission(results: Path, name: str) -> slurm.Submission:
    (submission,) = slurm.find_submissions(results, name)
    return submission


def _submitted_and_checkpointed(results: Path, name: str) -> slurm.Submission:
    """Wait for the sweep's submission, then for its first task's first epoch checkpoint."""
    submission = wait_for(lambda: slurm.find_submissions(results, name), 120, "the submission")[0]
    wait_for(lambda: checkpoint_progress(results, submission.run_ids[0]) >= 1, 300, "the first checkpoint")
    return submission


def test_sweep_lands_every_result_while_status_follows_it(cluster, env, prepared_wiki, tmp_path):
    """CVH on the real Wikipedia data and DCMH for a few epochs on toy (and the two other cells of
    that grid) run as one array, two tasks at a time; `cmhbench status` sees the jobs pending or
    running, then done; a second sweep submits nothing."""
    results = tmp_path / "results"
    grid = tmp_path / "grid.yaml"
    grid.write_text("methods: [cvh, dcmh]\ndatasets: [wiki, toy]\nbits: [16]\nseeds: [0]\nepochs: 3\n"
                    "dataset_options: {toy: {size: 200, vocabulary: 160}}\ndevice: cpu\n")
    args = ["sweep", str(grid), "--results", str(results), "--name", "grid", *CLUSTER_OPTIONS, "--max-parallel", "2",
            "--threads", "1"]
    sweep = cli_process(*args, env=env)
    seen: set[str] = set()
    try:
        while sweep.poll() is None:
            if (results / ".sweeps" / "grid.json").exists():
                seen |= {job["state"] for job in _status(results, env)}
            time.sleep(0.5)
        out, err = sweep.communicate()
    finally:
        if sweep.poll() is None:
            sweep.kill()
    assert sweep.returncode == 0, out + err
    assert "submitted slurm job array" in out and "ran 4, already done 0" in out, out
    assert "sacct" not in out + err
    assert seen & {"pending", "running"} and seen <= {"pending", "running", "done"}, seen
    files = result_files(results)
    assert sorted(p.relative_to(results).parts[:2] for p in files) == [
        ("toy", "cvh"), ("toy", "dcmh"), ("wiki", "cvh"), ("wiki", "dcmh")]
    assert {job["state"] for job in _status(results, env)} == {"done"}
    # every task logged where it ran, and ran its job on the one CPU Slurm gave it
    logs = sorted(_submission(results, "grid").folder.glob("task-*.log"))
    assert len(logs) == 4 and all("start 0" in log.read_text() for log in logs)
    assert "--threads 1" in (_submission(results, "grid").folder / "job.sbatch").read_text()
    assert {json.loads(p.read_text())["environment"]["threads"] for p in files} == {1}

    again = run_cli(*args, env=env)
    assert again.returncode == 0 and "ran 0, already done 4" in again.stdout, again.stdout + again.stderr
    assert "submitted" not in again.stdout.split("ran 0")[0]
    assert len(slurm.find_submissions(results, "grid")) == 1


def _deep_sweep(tmp_path: Path, epochs: int) -> Path:
    """DCMH on the tiny toy for ``epochs`` epochs (a few tenths of a second each). The published rates
    diverge on a training set this small (the balance term's feedback grows with batch / N; see
    docs/methods/dcmh.md), so the job runs at a tenth of them."""
    path = tmp_path / "deep.yaml"
    path.write_text(f"methods: [dcmh]\ndatasets: [toy]\nbits: [16]\nseeds: [0]\nepochs: {epochs}\ndevice: cpu\n"
                    "dataset_options: {toy: {size: 200, vocabulary: 160}}\n"
                    "hparams: {dcmh: {lr_start: 0.001, lr_end: 0.0001}}\n")
    return path


def test_requeued_job_resumes_to_the_uninterrupted_result(cluster, env, tmp_path):
    """`scontrol requeue` kills a DCMH task after its first epoch's checkpoint; Slurm holds it, status
    shows it pending in Slurm's queue, and the rerun (SLURM_RESTART_COUNT=1) resumes from the
    checkpoint and ends with the same loss history and metrics as an uninterrupted run."""
    grid = _deep_sweep(tmp_path, epochs=40)
    reference_dir = tmp_path / "reference"
    # one thread, as the Slurm task (--cpus-per-job 1): float sums then add up in the same order
    reference = run_cli("sweep", str(grid), "--results", str(reference_dir), "--executor", "local",
                        env={"OMP_NUM_THREADS": "1"})
    assert reference.returncode == 0, reference.stdout + reference.stderr

    results = tmp_path / "results"
    sweep = cli_process("sweep", str(grid), "--results", str(results), "--name", "requeue", *CLUSTER_OPTIONS, env=env)
    try:
        submission = wait_for(lambda: slurm.find_submissions(results, "requeue"), 120, "the submission")[0]
        run_id = submission.run_ids[0]
        # the same sweep again while its task is queued or running: it waits, it does not submit twice
        again = run_cli("sweep", str(grid), "--results", str(results), "--name", "requeue", *CLUSTER_OPTIONS,
                        "--no-wait", env=env)
        assert again.returncode == 0 and "1 job(s) still queued from an earlier submission" in again.stdout, \
            again.stdout + again.stderr
        assert "submitted slurm job array" not in again.stdout and len(slurm.find_submissions(results, "requeue")) == 1
        wait_for(lambda: checkpoint_progress(results, run_id) >= 1, 300, "the first checkpoint")
        cluster.command("scontrol", "requeue", f"{submission.job_id}_0")
        pending = wait_for(lambda: [job for job in _status(results, env) if job["state"] == "pending"],
                            60, "status to show the requeued job pending")
        assert f"slurm task {submission.job_id}_0" in pending[0]["detail"]
        out, err = sweep.communicate(timeout=600)
    finally:
        if sweep.poll() is None:
            sweep.kill()
    assert sweep.returncode == 0, out + err
    assert "start 1" in submission.log_path(0).read_text()  # Slurm ran it a second time
    (after,), (before,) = result_files(results), result_files(reference_dir)
    after, before = json.loads(after.read_text()), json.loads(before.read_text())
    assert after["run_id"] == before["run_id"]
    assert 1 <= after["training"]["resumed_from"]["train"] < 40
    assert after["training"]["history"] == before["training"]["history"]
    for direction in ("i2t", "t2i"):
        assert after["metrics"][direction]["map"] == pytest.approx(before["metrics"][direction]["map"], abs=1e-12)


def test_task_signalled_near_its_time_limit_requeues_itself_and_resumes(cluster, env, tmp_path):
    """Slurm signals the batch shell (USR1) before the time limit; here the signal is sent by hand.
    The shell requeues its task, which runs again and resumes from its checkpoint."""
    results = tmp_path / "results"
    sweep = cli_process("sweep", str(_deep_sweep(tmp_path, epochs=40)), "--results", str(results),
                         "--name", "timeout", *CLUSTER_OPTIONS, env=env)
    try:
        submission = _submitted_and_checkpointed(results, "timeout")
        cluster.command("scancel", "--signal=USR1", "--batch", f"{submission.job_id}_0")
        out, err = sweep.communicate(timeout=600)
    finally:
        if sweep.poll() is None:
            sweep.kill()
    assert sweep.returncode == 0, out + err
    log = submission.log_path(0).read_text()
    assert "near the time limit: requeueing" in log and "start 1" in log, log
    (result,) = result_files(results)
    assert json.loads(result.read_text())["training"]["resumed_from"]["train"] >= 1


def test_cancelled_job_ends_the_waiting_sweep_with_a_clear_failure(cluster, env, tmp_path):
    """`scancel` of a running task: the waiting sweep returns (it does not hang) with status 1 and a
    line naming the task and its log; status reports the job interrupted, resumable."""
    results = tmp_path / "results"
    sweep = cli_process("sweep", str(_deep_sweep(tmp_path, epochs=200)), "--results", str(results),
                         "--name", "cancel", *CLUSTER_OPTIONS, env=env)
    try:
        submission = _submitted_and_checkpointed(results, "cancel")
        cluster.command("scancel", f"{submission.job_id}_0")
        out, err = sweep.communicate(timeout=120)
    finally:
        if sweep.poll() is None:
            sweep.kill()
    assert sweep.returncode == 1, out + err
    assert f"slurm task {submission.job_id}_0 left the queue without a result" in out
    assert "1 job(s) failed" in out + err
    assert "sacct" not in out + err
    (job,) = _status(results, env)
    assert job["state"] == "interrupted" and "resumes after train" in job["detail"]


def test_requests_the_cluster_cannot_meet_are_refused_before_submitting(cluster, env, tmp_path):
    results = tmp_path / "results"
    common = ["sweep", "--methods", "cvh", "--datasets", "toy", "--bits", "16", "--seeds", "0", *TINY,
              "--results", str(results), "--executor", "slurm", "--time", "10"]
    gpu = run_cli(*common, "--partition", PARTITION, "--gpus-per-job", "1", env=env)
    assert gpu.returncode != 0
    assert f"--gpus-per-job 1: partition {PARTITION} has no GPUs" in gpu.stderr
    assert "Traceback" not in gpu.stderr and len(gpu.stderr.strip().splitlines()) == 1, gpu.stderr
    limited = cluster.command("scontrol", "update", f"PartitionName={PARTITION}", "MaxTime=30")
    assert limited.returncode == 0
    try:
        too_long = run_cli(*common[:-1], "60", "--partition", PARTITION, env=env)
    finally:
        cluster.command("scontrol", "update", f"PartitionName={PARTITION}", "MaxTime=INFINITE")
    assert too_long.returncode != 0 and f"--time 60: partition {PARTITION} allows at most 30 minutes" in too_long.stderr
    unknown = run_cli(*common, "--partition", "nosuch", env=env)
    assert unknown.returncode != 0 and f"--partition nosuch: no such partition; sinfo lists {PARTITION}" in unknown.stderr
    assert not slurm.find_submissions(results, "*")
    assert cluster.command("squeue", "-h").stdout.strip() == ""


def test_batch_script_asks_for_gpus_only_when_given_some(tmp_path):
    def script(gpus: int) -> str:
        return slurm.batch_script(count=3, partition="debug", gpus=gpus, time_min=30, cpus=4, mem_gb=2.5,
                                  max_parallel=2, worker_command=["python", "-m", "w"])

    without, with_two = script(0), script(2)
    assert "#SBATCH --signal=B:USR1@180" in without  # 30 minutes: requeues itself 3 minutes before the end
    assert "--signal" not in slurm.batch_script(count=1, partition="p", gpus=0, time_min=5, cpus=None,
                                                mem_gb=None, max_parallel=1, worker_command=["w"])
    assert "--gpus" not in without and "--gres" not in without
    assert "#SBATCH --gpus-per-node=2" in with_two
    for line in ("#SBATCH --array=0-2%2", "#SBATCH --partition=debug", "#SBATCH --time=30", "#SBATCH --requeue",
                 "#SBATCH --cpus-per-task=4", "#SBATCH --mem=2560M"):
        assert line in without


def test_gpus_default_to_what_the_partition_has(monkeypatch):
    """Without --gpus-per-job a job asks for one GPU only on a partition whose nodes list a gpu gres."""
    listing = "cpu*|(null)\ngpu|gpu:a100:4\ngpu|(null)\n"
    monkeypatch.setattr(slurm, "_call", lambda *args: subprocess.CompletedProcess(args, 0, listing, ""))
    assert slurm.gpus_to_request(None, None) == ("cpu", 0)
    assert slurm.gpus_to_request(None, "gpu") == ("gpu", 1)
    assert slurm.gpus_to_request(2, "gpu") == ("gpu", 2)
    with pytest.raises(Exception, match="--gpus-per-job 1: partition cpu has no GPUs"):
        slurm.gpus_to_request(1, "cpu")


def test_time_limits_read_as_slurm_writes_them():
    assert slurm.minutes_of("infinite") is None
    assert [slurm.minutes_of(t) for t in ("30", "30:00", "2:00:00", "1-00:00:00", "1-02:30:00")] == [
        30, 30, 120, 1440, 1590]


def test_a_jobs_reported_seconds_are_its_wall_times_not_its_segment_count(tmp_path):
    path = tmp_path / "result.json"
    path.write_text(json.dumps({"timings": {"train_seconds": 10.0, "encode_seconds": 1.5, "evaluate_seconds": 0.5,
                                            "train_segments": 2, "checkpoint_seconds": 3.0}}))
    assert slurm._seconds_of(str(path)) == 12.0
