"""Hardening, third round: what a new user and a prober broke on the main of 2026-12-07. Each case
failed there (a traceback, a lost Ctrl-C, a file written outside the results folder, an input taken
for something it was not)."""

from __future__ import annotations

import json
import signal
import sys
import weakref

import pytest
from conftest import run_cli

from cmhbench import cli as cli_module
from cmhbench import interrupts
from cmhbench.errors import CmhbenchError
from cmhbench.fsutil import atomic_path
from cmhbench.plugins.registry import get_registry
from cmhbench.request import RunRequest, check_request
from cmhbench.runner import plan, run
from cmhbench.suggest import unknown_name_message
from cmhbench.sweep.manifest import read_manifest
from cmhbench.sweep.spec import load_sweep_file, spec_from_mapping

GRID = {"methods": ["cvh"], "datasets": ["toy"]}


@pytest.fixture
def swallowed(monkeypatch):
    """Signal handlers installed as the CLI installs them; what Python swallowed, as it swallowed it."""
    restore = interrupts.install()
    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    yield unraisable
    restore()


def _swallowed(signum: int) -> None:
    """A signal that lands in a finaliser: Python prints 'Exception ignored' and goes on."""
    holder = type("Holder", (), {})()
    weakref.finalize(holder, interrupts._handle, signum, None)
    del holder


def test_a_ctrl_c_swallowed_by_a_finaliser_still_stops_the_write(tmp_path, swallowed):
    target = tmp_path / "prepared.h5"
    target.write_text("the old complete file")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            tmp.write_text("half of the new one")
            _swallowed(signal.SIGINT)
    assert isinstance(swallowed[0].exc_value, KeyboardInterrupt)  # it was swallowed where it landed
    assert target.read_text() == "the old complete file" and [p.name for p in tmp_path.iterdir()] == [target.name]


def test_a_swallowed_sigterm_ends_the_command_with_143(monkeypatch, capsys, swallowed):
    monkeypatch.setattr(cli_module.cli, "main", lambda **kwargs: _swallowed(signal.SIGTERM))
    monkeypatch.setattr("sys.argv", ["cmhbench", "data", "prepare", "mirflickr"])
    with pytest.raises(SystemExit) as exit_:
        cli_module.main()
    assert isinstance(swallowed[0].exc_value, interrupts.Terminated)
    assert exit_.value.code == 143 and "stopped by SIGTERM" in capsys.readouterr().err


@pytest.mark.parametrize("args, expected", [
    (["run", "-m", "dcmh", "-d", "toy", "--threads", "0"], "Invalid value for '--threads'"),
    (["run", "-m", "dcmh", "-d", "toy", "--epoch", "3"], "No such option '--epoch'"),
    (["sweep", "--methods", "cvh", "--datasets", "toy", "--workers", "0"], "Invalid value for '--workers'"),
])
def test_a_malformed_option_is_one_line_and_exit_1(args, expected, tmp_path):
    out = run_cli(*args, cwd=tmp_path)
    assert out.returncode == 1 and expected in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Usage:" not in out.stderr, out.stderr
    assert not list(tmp_path.rglob("*.json"))  # the sweep wrote no manifest before refusing


@pytest.mark.parametrize("name", ["../../etc", "/tmp/victim", ".hidden", "a/b", "x" * 65, 7])
def test_a_sweep_name_cannot_be_a_path(name):
    with pytest.raises(CmhbenchError, match="key 'name' must be letters, digits"):
        spec_from_mapping({**GRID, "name": name}, "sweep file grid.yaml")


def test_a_sweep_name_that_is_an_identifier_is_kept():
    assert spec_from_mapping({**GRID, "name": "toy-grid_2.v1"}, "x").name == "toy-grid_2.v1"


@pytest.mark.parametrize("key, value", [("bits", [True]), ("bits", [16.9]), ("seeds", [0.5]), ("epochs", True),
                                        ("results", [1]), ("device", 0), ("preset", ["quick"])])
def test_sweep_values_of_the_wrong_kind_are_refused_not_coerced(key, value):
    with pytest.raises(CmhbenchError, match=f"key '{key}' must be"):
        spec_from_mapping({**GRID, key: value}, "sweep file grid.yaml")


def test_a_sweep_file_that_is_not_text_or_is_a_folder(tmp_path):
    binary = tmp_path / "grid.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(CmhbenchError, match="grid.yaml is not UTF-8 text"):
        load_sweep_file(binary)
    (tmp_path / "folder.yaml").mkdir()
    with pytest.raises(CmhbenchError, match="folder.yaml is a folder"):
        load_sweep_file(tmp_path / "folder.yaml")


def test_a_sweep_manifest_that_is_not_text(tmp_path):
    manifest = tmp_path / ".sweeps" / "grid.json"
    manifest.parent.mkdir()
    manifest.write_bytes(b"\xff{")
    with pytest.raises(CmhbenchError, match="is not a cmhbench sweep manifest"):
        read_manifest(manifest)


@pytest.mark.parametrize("seed", [-1, 2**32, 2**64, True])
def test_seeds_out_of_range_are_refused(seed, tmp_path):
    request = RunRequest(method="cvh", dataset="toy", bits=8, seed=seed, results_dir=tmp_path)
    with pytest.raises(CmhbenchError, match=r"--seeds .*: seeds are integers from 0 to 4,294,967,295"):
        check_request(request, get_registry())


@pytest.mark.parametrize("content", [b'{"x": 1}', b"\xff\xfe", None])
def test_a_file_where_the_result_goes_that_is_not_the_result(content, tmp_path):
    request = RunRequest(method="cvh", dataset="toy", bits=8, device="cpu", quiet=True,
                         dataset_options={"size": 100}, results_dir=tmp_path)
    path = plan(request).path
    path.parent.mkdir(parents=True)
    path.mkdir() if content is None else path.write_bytes(content)
    with pytest.raises(CmhbenchError) as info:
        run(request)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_a_failed_sweep_job_keeps_a_user_error_to_its_line(tmp_path):
    """The README's sweep example once put AlexNet on the toy's 32-px images: the job's error was a
    20-line traceback around its one line."""
    grid = tmp_path / "grid.yaml"
    grid.write_text("methods: [cvh]\ndatasets: [toy]\nbits: [8]\nseeds: [0]\ndataset_options: {toy: {size: 100}}\n"
                    "image_encoders: {toy: alexnet}\nresults: results\nname: grid\n")
    out = run_cli("sweep", str(grid), cwd=tmp_path)
    assert out.returncode == 1 and "error: image backbones need images of at least 63" in out.stdout, out.stdout
    [state] = (tmp_path / "results" / ".jobs").glob("*.json")
    error = json.loads(state.read_text())["error"]
    assert error.startswith("error: ") and "Traceback" not in error and len(error.splitlines()) == 1, error


def test_datasets_and_encoders_print_their_citations():
    datasets = {row["name"]: row for row in json.loads(run_cli("datasets", "--json").stdout)}
    encoders = {row["name"]: row for row in json.loads(run_cli("encoders", "--json").stdout)}
    assert "A New Approach to Cross-Modal Multimedia Retrieval" in datasets["wiki"]["citation"]
    assert "Deep Residual Learning" in encoders["resnet50"]["citation"] and encoders["identity"]["citation"] == ""


def test_a_swapped_pair_of_letters_is_suggested():
    assert "did you mean 'toy'?" in unknown_name_message("dataset", "tyo", ["toy", "wiki", "coco"])


def test_a_nested_install_keeps_the_outer_record(swallowed):
    """The CLI's handlers inside a process that has them already (a test, a worker): the inner
    restore gives back the outer record and handlers, not a clean slate."""
    interrupts.record(signal.SIGTERM)
    handler = signal.getsignal(signal.SIGTERM)
    restore_inner = interrupts.install()
    restore_inner()
    assert signal.getsignal(signal.SIGTERM) is handler
    with pytest.raises(interrupts.Terminated):
        interrupts.raise_if_received()
