"""The CLI: every user error is one line naming what was wrong, exit 1, no traceback, no result."""

from __future__ import annotations

import json
import sys

import pytest

from conftest import run_cli

TINY = ["--dataset-opt", "size=100", "--epochs", "1", "--bits", "8", "--quiet", "--device", "cpu"]


@pytest.mark.parametrize("args, message", [
    (["run", "--method", "dcmhh", "--dataset", "toy"], "unknown method 'dcmhh'; did you mean 'dcmh'?"),
    (["run", "--method", "dcmh", "--dataset", "toys"], "unknown dataset 'toys'; did you mean 'toy'?"),
    (["run", "--method", "dcmh", "--dataset", "toy", "--image-encoder", "alexnett", *TINY],
     "unknown encoder 'alexnett'; did you mean 'alexnet'?"),
    (["run", "--method", "dcmh", "--dataset", "toy", "--set", "gamma", *TINY],
     "--set 'gamma': expected key=value"),
    (["run", "--method", "dcmh", "--dataset", "toy", "--set", "gama=2", *TINY],
     "unknown dcmh hyper-parameter 'gama'; did you mean 'gamma'?"),
    (["run", "--method", "dcmh", "--dataset", "toy", "--set", "gamma=high", *TINY],
     "--set gamma=high: dcmh expects float for gamma"),
    (["run", "--method", "daph", "--dataset", "toy", "--set", "stage=proxy", *TINY],
     "--set stage=proxy: daph expects one of both, proxies, hashing, joint for stage (default both)"),
    (["run", "--method", "scm-seq", "--dataset", "wiki", "--set", "stop=early", *TINY],
     "--set stop=early: scm-seq expects one of none, cca for stop (default cca)"),
    (["run", "--method", "scm-orth", "--dataset", "wiki", "--set", "stop=none", *TINY],
     "unknown scm-orth hyper-parameter 'stop'"),
    (["run", "--method", "dcmh", "--dataset", "toy", "--directions", "i2t,i2x", *TINY],
     "--directions 'i2t,i2x': expected distinct names among i2t, t2i, i2i, t2t"),
    (["run", "--method", "dcmh", "--dataset", "toy", "--bits", "16,x"], "--bits '16,x': expected comma-separated integers"),
    (["run", "--method", "dcmh", "--dataset", "toy", "--dataset-opt", "colour=red", *TINY],
     "unknown toy dataset option 'colour'"),
    (["run", "--method", "dcmh", "--dataset", "toy", "--preset", "fast", *TINY],
     "unknown dcmh preset 'fast'"),
    (["run", "--method", "dcmh", "--dataset", "toy", "--image-encoder", "identity", *TINY],
     "--image-encoder identity takes features/bow input, but dataset toy has image pixels"),
    (["run", "--method", "dcmh", "--dataset", "toy", "--image-weights", "/no/such/file.pth", *TINY],
     "image weights file /no/such/file.pth does not exist"),
    (["run", "--method", "dcmh", "--dataset", "toy", "--device", "tpu", *TINY[:-2]], "--device 'tpu'"),
])
def test_bad_input_is_one_clear_line(tmp_path, monkeypatch, capsys, args, message):
    """In process (the entry point `main`, as the console script calls it) to spare a torch import
    per case; `test_bad_input_through_the_console_script` covers the real subprocess."""
    from cmhbench.cli import main

    monkeypatch.setattr(sys, "argv", ["cmhbench", *args, "--results", str(tmp_path / "results")])
    with pytest.raises(SystemExit) as exited:
        main()
    stderr = capsys.readouterr().err
    assert exited.value.code == 1, stderr
    assert "Traceback" not in stderr
    assert message in " ".join(stderr.split())
    assert not list(tmp_path.rglob("*.json")), "no result file may be written"


def test_bad_input_through_the_console_script(tmp_path):
    result = run_cli("run", "--method", "dcmhh", "--dataset", "toy", "--results", str(tmp_path), env={"COLUMNS": "300"})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: unknown method 'dcmhh'; did you mean 'dcmh'? (known: ")


def test_corrupt_prepared_dataset_is_reported(tmp_path):
    """A prepared file cut short (a full disk, a killed copy): one line naming it, no result. (A
    damaged *generated* toy cache is regenerated instead: tests/test_toy.py.)"""
    env = {"CMHBENCH_HOME": str(tmp_path / "home"), "COLUMNS": "300"}
    prepared = tmp_path / "home" / "prepared" / "iapr.h5"
    prepared.parent.mkdir(parents=True)
    prepared.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 200)
    bad = run_cli("run", "--method", "cvh", "--dataset", "iapr", "--bits", "16", "--seeds", "0", "--quiet",
                  "--device", "cpu", "--results", str(tmp_path / "r2"), env=env)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert f"{prepared} is not a readable HDF5 file" in " ".join(bad.stderr.split())
    assert not list((tmp_path / "r2").rglob("*.json"))


def test_listing_commands():
    for command, expected in (("methods", "dcmh"), ("datasets", "toy"), ("encoders", "resnet50")):
        result = run_cli(command, env={"COLUMNS": "250"})
        assert result.returncode == 0 and expected in result.stdout


@pytest.mark.parametrize("args", [
    ["--help"], ["methods"], ["datasets"], ["encoders"], ["plugins"], ["data", "list"], ["data", "info", "wiki"],
    ["data", "info", "toy"], ["run", "--method", "dcmh", "--dataset", "toy", "--bits", "abc"],
    ["run", "--method", "dcmhh", "--dataset", "toy"], ["run", "--method", "dcmh", "--dataset", "iapr"],
    ["run", "--method", "dcmh", "--dataset", "toy", "--directions", "i2x"],
    ["run", "--method", "dcmh", "--dataset", "toy", "--set", "gama=1"],
])
def test_commands_that_train_nothing_never_import_torch(args, tmp_path):
    """Listing, help and every validation error answer without torch, torchvision or matplotlib
    (they cost seconds to import on a loaded machine; tests/benchmarks/test_cli_speed.py times it)."""
    probe = ("import sys; from cmhbench.cli import cli\n"
             "try:\n    cli.main(sys.argv[1:], standalone_mode=False)\nexcept BaseException:\n    pass\n"
             "heavy = [m for m in ('torch', 'torchvision', 'matplotlib') if m in sys.modules]\n"
             "print('HEAVY', heavy, file=sys.stderr)")
    import subprocess

    result = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=300,
                            env={**__import__("os").environ, "CMHBENCH_HOME": str(tmp_path)})
    assert "HEAVY []" in result.stderr, result.stderr[-2000:]


def test_threads_option_sets_and_records_the_thread_count(tmp_path):
    done = run_cli("run", "--method", "dcmh", "--dataset", "toy", "--bits", "16", "--seeds", "0", "--epochs", "1",
                   "--dataset-opt", "size=60", "--image-weights", "none", "--threads", "1", "--quiet",
                   "--results", str(tmp_path))
    assert done.returncode == 0, done.stderr
    (result,) = [p for p in tmp_path.rglob("*.json") if ".checkpoints" not in p.parts]
    assert json.loads(result.read_text())["environment"]["threads"] == 1
    refused = run_cli("run", "--method", "dcmh", "--dataset", "toy", "--threads", "0")
    assert refused.returncode != 0 and "--threads" in refused.stderr and "Traceback" not in refused.stderr
