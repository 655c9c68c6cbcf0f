"""Issue 25's guarantees (hardening, second round): no command replaces what it must not, no input
exhausts the machine, every failure is one line. Each case is one an attacker tried on the main of
before; each failed there."""

from __future__ import annotations

import errno
import json
import os
import signal
import stat
import subprocess
import sys

import h5py
import numpy as np
import pytest
import torch
from conftest import CLI, checkpoint_progress, cli_process, run_cli, wait_for
from leaderboard_fixtures import make_result, write_result

from cmhbench.errors import CmhbenchError
from cmhbench.evaluation import evaluate
from cmhbench.fsutil import atomic_path, write_json_atomic
from cmhbench.leaderboard.load import load_results
from cmhbench.leaderboard.site import build_site
from cmhbench.method import HashingMethod, to_codes
from cmhbench.specs import Citation, MethodSpec

TINY_RUN = dict(method="dcmh", dataset="toy", bits=8, seed=0, epochs=1, device="cpu", preset="tiny",
                dataset_options={"size": 100}, quiet=True)


def _codes_file(path, **extra):
    rng = np.random.default_rng(0)
    labels = (rng.random((40, 5)) < 0.3).astype(np.uint8)
    codes = np.where(rng.random((40, 16)) < 0.5, 1, -1).astype(np.int8)
    arrays = dict(query_labels=labels[:10], retrieval_labels=labels[10:], query_image=codes[:10],
                  retrieval_text=codes[10:])
    arrays.update(extra)
    np.savez(path, **arrays)
    return path


# --- data loss: nothing but a regular file is replaced ----------------------------------------------

def test_an_output_onto_a_device_a_link_or_a_folder_is_refused(tmp_path):
    codes = _codes_file(tmp_path / "ok.npz")
    link = tmp_path / "link.json"
    link.symlink_to(tmp_path / "elsewhere.json")
    (tmp_path / "afile").write_text("x")
    for target, kind in (("/dev/full", "a character device"), (link, "a symbolic link"), (tmp_path, "a folder")):
        result = run_cli("evaluate", str(codes), "-o", str(target))
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        assert f"it is {kind}, not a regular file" in " ".join(result.stderr.split())
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode) and link.is_symlink()
    child = run_cli("evaluate", str(codes), "-o", str(tmp_path / "afile" / "m.json"))
    assert child.returncode == 1 and "is a file, not a folder" in " ".join(child.stderr.split()), child.stderr


def test_a_full_disk_is_one_line_and_replaces_nothing(tmp_path, monkeypatch):
    target = tmp_path / "result.json"
    target.write_text("old")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(CmhbenchError, match="no space left on its device"):
        with atomic_path(target) as tmp:
            full(tmp)
    monkeypatch.setattr("shutil.disk_usage", lambda path: type("U", (), {"free": 4096})())
    with pytest.raises(CmhbenchError, match="no space left"):
        with atomic_path(target):
            raise RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 4096 vs 4000")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_leaderboard_build_never_replaces_what_it_did_not_build(tmp_path):
    results = tmp_path / "results"
    write_result(results, make_result("dcmh", seed=0, i2t=0.6))
    thesis = tmp_path / "mine"
    thesis.mkdir()
    (thesis / "thesis.tex").write_text("years of work")
    (tmp_path / "afile").write_text("keep me")
    for out, says in ((thesis, "is not a site built by"), (tmp_path / "afile", "it is not a folder"),
                      (results, "it overlaps the input"), (tmp_path, "it overlaps the input"),
                      (results / "site", "it overlaps the input")):
        with pytest.raises(CmhbenchError, match=says):
            build_site([results], out)
    assert (thesis / "thesis.tex").read_text() == "years of work" and (tmp_path / "afile").read_text() == "keep me"
    assert len(list(results.rglob("*.json"))) == 1
    site = build_site([results], tmp_path / "site").out
    build_site([results], site)  # a site built here is rebuilt in place
    assert (site / ".cmhbench-site").is_file()
    assert stat.S_IMODE(site.stat().st_mode) & 0o055 == 0o055, oct(site.stat().st_mode)  # readable by others


# --- wrong numbers without an error --------------------------------------------------------------------

def test_codes_longer_than_the_evaluator_scores_are_refused():
    rng = np.random.default_rng(1)
    labels = (rng.random((30, 4)) < 0.4).astype(np.uint8)
    codes = np.tile(np.where(rng.random((30, 16)) < 0.5, 1, -1).astype(np.int8), (1, 2500))  # 40,000 bits
    with pytest.raises(CmhbenchError, match="40,000 bits.*at most 32,767"):
        evaluate(codes[:10], codes[10:], labels[:10], labels[10:])


def test_packed_codes_must_match_their_declared_length(tmp_path):
    rng = np.random.default_rng(2)
    packed = np.packbits(rng.random((40, 16)) < 0.5, axis=1)  # 2 bytes per item
    labels = (rng.random((40, 3)) < 0.4).astype(np.uint8)
    arrays = dict(query_labels=labels[:10], retrieval_labels=labels[10:], query_image=packed[:10],
                  retrieval_text=packed[10:])
    np.savez(tmp_path / "wide.npz", bits=np.array(32), **arrays)
    result = run_cli("evaluate", str(tmp_path / "wide.npz"))
    assert result.returncode == 1 and "(10, 2)" in result.stderr and "into 4 bytes" in result.stderr, result.stderr
    for bits, shown in ((np.array([16, 16]), "(2,)"), (np.array("16"), "<U2")):
        np.savez(tmp_path / "odd.npz", bits=bits, **arrays)
        result = run_cli("evaluate", str(tmp_path / "odd.npz"))
        assert result.returncode == 1 and "Traceback" not in result.stderr and shown in result.stderr, result.stderr
    np.savez(tmp_path / "ok.npz", bits=np.array(16), **arrays)
    assert run_cli("evaluate", str(tmp_path / "ok.npz")).returncode == 0


def test_map_at_zero_is_one_line(tmp_path):
    result = run_cli("evaluate", str(_codes_file(tmp_path / "ok.npz")), "--map-at", "0")
    assert result.returncode == 1 and "Traceback" not in result.stderr and "give each K from 1 to" in result.stderr


# --- exhaustion and hangs ------------------------------------------------------------------------------

def test_hdf5_bombs_and_files_reaching_outside_are_refused_unread(tmp_path):
    from cmhbench.data.readers import read_source

    bomb = tmp_path / "bomb.h5"
    with h5py.File(bomb, "w") as f:  # declared, never written: a few KB on disk
        f.create_dataset("query_labels", shape=(400_000, 50_000), dtype="uint8", compression="gzip", chunks=(1000, 1000))
    assert bomb.stat().st_size < 64_000
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["data"] = np.ones((4, 4), np.uint8)
    linked = tmp_path / "linked.h5"
    with h5py.File(linked, "w") as f:
        f["query_labels"] = h5py.ExternalLink(str(other), "data")
    virtual = tmp_path / "virtual.h5"
    layout = h5py.VirtualLayout(shape=(4, 4), dtype="uint8")
    layout[:] = h5py.VirtualSource(str(other), "data", shape=(4, 4))
    with h5py.File(virtual, "w") as f:
        f.create_virtual_dataset("query_labels", layout)
    raw = tmp_path / "raw.h5"
    with h5py.File(raw, "w") as f:
        f.create_dataset("query_labels", shape=(8, 8), dtype="uint8", external=[("/etc/passwd", 0, 64)])
    for path, says in ((bomb, "more than"), (linked, "external link"), (virtual, "virtual dataset"),
                       (raw, "external raw files")):
        result = run_cli("evaluate", str(path))
        assert result.returncode == 1 and says in " ".join(result.stderr.split()), result.stderr
        with pytest.raises(CmhbenchError, match=says):
            read_source(path)["query_labels"].read()


def test_an_npz_declaring_a_huge_array_is_refused_from_its_header(tmp_path):
    import zipfile

    header = tmp_path / "header.npy"
    with open(header, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False, "shape": (10**6, 10**5)})
    with zipfile.ZipFile(tmp_path / "bomb.npz", "w") as archive:
        archive.write(header, "query_labels.npy")
    result = run_cli("evaluate", str(tmp_path / "bomb.npz"))
    assert result.returncode == 1 and "more than" in result.stderr, result.stderr


def test_a_huge_class_index_is_refused():
    codes = np.ones((3, 8), np.int8)
    with pytest.raises(CmhbenchError, match="class index 100,000,000,000"):
        evaluate(codes, codes, np.array([0, 1, 10**11]), np.array([0, 1, 2]))


def test_the_board_reads_only_regular_files_of_a_bounded_size(tmp_path):
    results = tmp_path / "results"
    write_result(results, make_result("dcmh", seed=0, i2t=0.6))
    (results / "zero.json").symlink_to("/dev/zero")
    os.mkfifo(results / "fifo.json")
    with open(results / "big.json", "wb") as f:
        f.truncate(17 * 1024**2)  # sparse: nothing to read, but over the cap
    deep = "[" * 200_000 + "]" * 200_000
    (results / "deep.json").write_text(deep)
    report = load_results([results])
    reasons = {path.name: reason for path, reason in report.rejected}
    assert len(report.entries) == 1
    assert "not a regular file" in reasons["zero.json"] and "not a regular file" in reasons["fifo.json"]
    assert "more than a result can be" in reasons["big.json"] and "nested too deeply" in reasons["deep.json"]


def test_sweep_files_cannot_bomb_or_nest_without_end(tmp_path):
    bomb = tmp_path / "bomb.yaml"
    lines = ["methods: [dcmh]", "datasets: [toy]", "a: &a [x, x, x, x, x, x, x, x, x]"]
    lines += [f"{name}: &{name} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]"
              for prev, name in zip("abcdefgh", "bcdefghi", strict=True)]
    lines.append("dataset_options: {toy: {size: *i}}")
    bomb.write_text("\n".join(lines) + "\n")
    result = run_cli("sweep", str(bomb), "--results", str(tmp_path / "r"))
    assert result.returncode == 1 and "aliases (*name) are not accepted" in result.stderr, result.stderr
    deep = tmp_path / "deep.yaml"
    deep.write_text("methods: [dcmh]\ndatasets: [toy]\nhparams: " + "[" * 5000 + "]" * 5000 + "\n")
    result = run_cli("sweep", str(deep), "--results", str(tmp_path / "r"))
    assert result.returncode == 1 and "Traceback" not in result.stderr and "nested too deeply" in result.stderr


def test_the_process_ends_when_a_plugin_leaves_threads_running():
    """What `cmhbench run` does after its result is written: the same `main`, with a non-daemon
    thread left running (as a plugin method's data loader might)."""
    code = ("import sys, threading, time\n"
            "threading.Thread(target=time.sleep, args=(600,)).start()\n"
            "sys.argv = ['cmhbench', 'methods']\n"
            "from cmhbench.cli import main\nmain()\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "dcmh" in done.stdout


# --- one line, not a traceback -------------------------------------------------------------------------

def test_a_results_folder_that_is_a_file_or_under_one_is_one_line(tmp_path):
    (tmp_path / "afile").write_text("x")
    for results in (tmp_path / "afile", tmp_path / "afile" / "below"):
        result = run_cli("run", "-m", "dcmh", "-d", "toy", "--epochs", "1", "--results", str(results))
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        assert "is a file, not a folder" in " ".join(result.stderr.split())


class Raising(HashingMethod):
    stateful = ("weights",)
    where = "fit"

    def __init__(self, setup):
        super().__init__(setup)
        self.weights = torch.zeros(setup.text_dim, setup.bits)
        torch.nn.init.normal_(self.weights)

    def fit(self, train, ctx):
        for _ in ctx.epochs("train"):
            if self.where == "fit":
                raise ValueError("boom in fit")

    def encode_image(self, images):
        if self.where == "encode":
            raise IndexError("boom in encode")
        return to_codes(images.float().flatten(1)[:, : self.bits] - 127.5)

    def encode_text(self, texts):
        return to_codes(texts.float() @ self.weights)

    def state_dict(self):
        if self.where == "state":
            raise TypeError("boom in state_dict")
        return super().state_dict()


@pytest.mark.parametrize("where, phase, error", [("fit", "fit", "ValueError: boom in fit"),
                                                 ("encode", "encode_image/encode_text", "IndexError: boom in encode"),
                                                 ("state", "state_dict()", "TypeError: boom in state_dict")])
def test_an_exception_in_a_method_names_the_method_and_its_plugin(tmp_path, where, phase, error):
    from cmhbench.plugins.registry import get_registry
    from cmhbench.runner import RunRequest, run
    from cmhbench.testing import _with_method

    method = type(f"Raising{where}", (Raising,), {"where": where})
    spec = MethodSpec(name=f"raise-{where}", description="", citation=Citation("t", "v", 2026), create=method,
                      defaults={"epochs": 2}, stages={"train": "epochs"}, input="direct")
    with pytest.raises(CmhbenchError) as info:
        run(RunRequest(method=spec.name, dataset="toy", bits=8, seed=0, device="cpu", quiet=True,
                       dataset_options={"size": 100}, results_dir=tmp_path), _with_method(get_registry(), spec))
    message = str(info.value)
    assert "\n" not in message and f"method raise-{where} (from check_method) failed in {phase}" in message
    assert error in message, message


def test_a_method_name_has_at_most_64_characters():
    from cmhbench.plugins.registry import get_registry
    from cmhbench.testing import _with_method

    spec = MethodSpec(name="m" * 10_000, description="", citation=Citation("t", "v", 2026), create=Raising)
    with pytest.raises(CmhbenchError, match="has 10,000 characters; names have at most 64"):
        _with_method(get_registry(), spec)


def test_sigterm_says_the_checkpoint_is_kept(tmp_path):
    process = cli_process("run", "-m", "dcmh", "-d", "toy", "-b", "8", "--epochs", "5000", "--preset", "tiny",
                          "--dataset-opt", "size=100", "--device", "cpu", "--results", str(tmp_path), "-q")
    try:
        wait_for(lambda: any(checkpoint_progress(tmp_path, p.name) for p in (tmp_path / ".checkpoints").glob("*")),
                 120, "a first checkpoint")
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 143, stderr
    assert "stopped by SIGTERM" in stderr and "the same command resumes" in stderr and "Traceback" not in stderr


def test_a_fifo_or_a_device_given_to_data_prepare_is_named_for_what_it_is(tmp_path):
    os.mkfifo(tmp_path / "labels.mat")
    for source, kind in ((tmp_path / "labels.mat", "a FIFO"), ("/dev/zero", "a character device")):
        result = run_cli("data", "prepare", "mirflickr", "--source", str(source))
        assert result.returncode == 1 and f"is {kind}, not a regular file" in result.stderr, result.stderr


# --- tests and checks that did not hold ----------------------------------------------------------------

class AllOnes(HashingMethod):
    stateful = ()

    def fit(self, train, ctx):
        for _ in ctx.epochs("train"):
            pass

    def encode_image(self, images):
        return torch.ones(len(images), self.bits, dtype=torch.int8)

    def encode_text(self, texts):
        return torch.ones(len(texts), self.bits, dtype=torch.int8)

    def state_dict(self):
        return {}


def test_check_method_fails_collapsed_codes(tmp_path):
    from cmhbench.testing import MethodCheckError, check_method

    spec = MethodSpec(name="all-ones", description="", citation=Citation("t", "v", 2026), create=AllOnes,
                      defaults={"epochs": 2}, stages={"train": "epochs"}, input="direct")
    with pytest.raises(MethodCheckError) as info:
        check_method(spec, workdir=tmp_path)
    assert info.value.rule == "not-collapsed" and "100% of the items share one code" in str(info.value)


class BatchCentred(Raising):
    where = "nowhere"

    def encode_text(self, texts):
        out = texts.float() @ self.weights
        return to_codes(out - out.mean(0))  # centred on the batch: an item's code depends on its company


def test_codes_that_depend_on_the_batch_are_refused_in_every_run(tmp_path):
    from cmhbench.plugins.registry import get_registry
    from cmhbench.runner import RunRequest, run
    from cmhbench.testing import _with_method

    spec = MethodSpec(name="batch-centred", description="", citation=Citation("t", "v", 2026), create=BatchCentred,
                      defaults={"epochs": 1}, stages={"train": "epochs"}, input="direct")
    with pytest.raises(CmhbenchError, match="text codes depend on the batch"):
        run(RunRequest(method=spec.name, dataset="toy", bits=16, seed=0, device="cpu", quiet=True,
                       dataset_options={"size": 400}, results_dir=tmp_path), _with_method(get_registry(), spec))
    assert not [p for p in tmp_path.rglob("*.json") if ".checkpoints" not in p.parts], "no result is written"


# --- smaller --------------------------------------------------------------------------------------------

def test_publish_takes_no_option_for_a_repository_and_a_full_branch_name_once(tmp_path):
    from cmhbench.leaderboard.publish import publish_site

    results = tmp_path / "results"
    write_result(results, make_result("dcmh", seed=0, i2t=0.6))
    site = build_site([results], tmp_path / "site").out
    with pytest.raises(CmhbenchError, match="cannot start with '-'"):
        publish_site(site, "--upload-pack=touch /tmp/owned")
    bare = tmp_path / "pages.git"
    subprocess.run(["git", "init", "--quiet", "--bare", str(bare)], check=True)
    publish_site(site, str(bare), "refs/heads/pages")
    refs = subprocess.run(["git", "--git-dir", str(bare), "for-each-ref", "--format=%(refname)"],
                          capture_output=True, text=True, check=True).stdout.split()
    assert refs == ["refs/heads/pages"]


def test_atomic_json_writes_keep_working(tmp_path):
    """The refusals above leave ordinary writes as they were."""
    path = write_json_atomic(tmp_path / "a" / "b.json", {"x": 1})
    assert json.loads(path.read_text()) == {"x": 1}
    assert CLI  # the console entry point the other tests drive


def test_an_edited_attribute_of_a_prepared_file_is_refused(tmp_path, monkeypatch):
    from cmhbench.data.format import load_canonical
    from cmhbench_datasets import toy

    monkeypatch.setenv("CMHBENCH_HOME", str(tmp_path))
    dataset = toy.open_toy({"size": 60})
    path = dataset.path
    with h5py.File(path, "a") as f:
        f.attrs["version"] = "2:forged"
    with pytest.raises(CmhbenchError, match="its attributes .* do not match the digest"):
        load_canonical(path)


def test_only_rows_with_every_seed_can_be_best_and_untrained_backbones_say_so(tmp_path):
    from cmhbench.leaderboard.aggregate import build_tables

    results = tmp_path / "results"
    for seed, value in enumerate((0.5, 0.6, 0.7)):
        write_result(results, make_result("dcmh", seed=seed, i2t=value))
    lucky = make_result("ssah", seed=0, i2t=0.9)
    lucky["encoders"]["image"] = {"name": "alexnet", "weights": "none"}
    write_result(results, lucky)
    (table,) = build_tables(load_results([results]).entries)
    cells = {row.method: table.cells(row)[0] for row in table.rows}
    assert cells["dcmh"].best and not cells["ssah"].best  # 0.6 over three seeds, not 0.9 from one
    assert next(r for r in table.rows if r.method == "ssah").label.startswith("ssah (alexnet:none / ")


def test_a_results_query_count_and_cutoffs_must_fit_its_splits(tmp_path):
    from cmhbench.results import compute_run_id, content_digest, definition_of_result

    forged = make_result("dcmh", seed=0, i2t=0.6)
    forged["metrics"]["i2t"]["num_queries"] = 10**9
    forged["run_id"] = compute_run_id(definition_of_result(forged))
    forged["content_sha256"] = content_digest(forged)
    write_result(tmp_path, forged, stamp=False)
    (rejected,) = load_results([tmp_path]).rejected
    assert "num_queries = 1000000000 but the run's query split has 10 items" in rejected[1]


def test_a_slurm_sweep_without_slurm_says_so_before_expanding(tmp_path):
    result = run_cli("sweep", "--methods", "dcmh", "--datasets", "no-such-dataset", "--executor", "slurm",
                     "--results", str(tmp_path), env={"PATH": str(tmp_path / "empty")})
    assert result.returncode == 1 and "`sinfo` is not on PATH" in result.stderr, result.stderr


def test_a_failed_run_leaves_no_lock_file_and_a_removed_lock_is_taken_again(tmp_path):
    from filelock import Timeout

    from cmhbench.results.lock import acquire_run_lock, lock_path, release_run_lock
    from cmhbench.runner import RunRequest, run

    with pytest.raises(CmhbenchError):
        run(RunRequest(**{**TINY_RUN, "hparams": {"lr_start": 1e6, "lr_end": 1e5}}, results_dir=tmp_path))  # diverges
    assert not list((tmp_path / ".jobs").glob("*.lock"))

    first = acquire_run_lock(tmp_path, "r" * 64, timeout=0)
    with pytest.raises(Timeout):
        acquire_run_lock(tmp_path, "r" * 64, timeout=0)
    release_run_lock(first, result_exists=False)
    assert not lock_path(tmp_path, "r" * 64).exists()
    again = acquire_run_lock(tmp_path, "r" * 64, timeout=0)  # a fresh file, held
    assert lock_path(tmp_path, "r" * 64).exists()
    release_run_lock(again)


def test_a_finished_run_asked_for_again_is_skipped_through_the_cli(tmp_path):
    args = ("run", "-m", "cvh", "-d", "toy", "--image-encoder", "toy-cnn", "--dataset-opt", "size=100", "-q",
            "--results", str(tmp_path))
    assert run_cli(*args).returncode == 0
    again = run_cli(*args)
    assert again.returncode == 0 and "result exists, skipped" in again.stdout, again.stderr
    forced = run_cli(*args, "--force")
    assert forced.returncode == 0 and "skipped" not in forced.stdout, forced.stderr


def test_a_zero_epoch_count_is_refused_before_training(tmp_path):
    from cmhbench.runner import RunRequest, run

    with pytest.raises(CmhbenchError, match="its epoch count must be at least 1, got 0"):
        run(RunRequest(**{**TINY_RUN, "epochs": None, "hparams": {"epochs": 0}}, results_dir=tmp_path))


def test_hyper_parameters_without_a_params_class_copy_and_pickle():
    import copy
    import pickle

    from cmhbench.specs import HyperParameters

    hp = HyperParameters({"lr": 0.1})
    assert copy.deepcopy(hp).lr == 0.1 and pickle.loads(pickle.dumps(hp)).lr == 0.1
