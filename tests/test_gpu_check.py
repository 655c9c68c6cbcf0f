"""benchmarks/gpu-check: its one line where there is no GPU, and its sections on the CPU at toy
scale (the GPU run itself is `pytest -m gpu` and the script's own run on a lent GPU)."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import torch

from cmhbench.results.provenance import environment
from cmhbench.throughput import Scale

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu-check"


def load_script():
    loader = importlib.machinery.SourceFileLoader("gpu_check", str(SCRIPT))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader("gpu_check", loader))
    loader.exec_module(module)
    return module


def test_without_a_gpu_it_says_so_in_one_line_and_exits_0(tmp_path):
    completed = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path / "x.json")], capture_output=True,
                               text=True, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""}, timeout=300)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip().splitlines() == [completed.stdout.strip()]
    assert completed.stdout.startswith("gpu-check: no CUDA GPU here")
    assert not (tmp_path / "x.json").exists()


def test_its_smoke_run_goes_through_every_section_on_the_cpu(tmp_path):
    """`--smoke` runs the whole check (pytest -m gpu, the evaluator, a method's two throughput rows,
    the table, the JSON) at toy scale, so the script itself is tried before a GPU slot is spent."""
    import json

    out = tmp_path / "check.json"
    completed = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--methods", "dcmh", "--out", str(out)],
                               capture_output=True, text=True, timeout=600,
                               env={**os.environ, "CUDA_VISIBLE_DEVICES": "", "CMHBENCH_HOME": str(tmp_path / "home")})
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["smoke"] and report["machine"]["device"] == "cpu"
    assert report["sections"]["tests"]["returncode"] == 0 and "skipped" in report["sections"]["tests"]["summary"]
    assert [(row["method"], row["precision"]) for row in report["sections"]["throughput"]] == [
        ("dcmh", "fp32"), ("dcmh", "bf16")]
    assert "gpu-check on cpu" in completed.stdout and "dcmh training, bf16 (toy-cnn" in completed.stdout


def test_its_sections_run_on_the_cpu(capsys):
    check = load_script()
    evaluator = check.evaluator_both_directions("cpu", (30, 400, 5, 0.3))
    assert evaluator["same_numbers"] and 0 < evaluator["map"]["i2t"] < 1
    tiny = Scale({"size": 60, "image_size": 32, "vocabulary": 160}, "toy-cnn", "clip-tiny", epochs=1)
    rows = check.throughput(["dcmh"], "cpu", tiny)
    assert [(r["method"], r["precision"]) for r in rows] == [("dcmh", "fp32"), ("dcmh", "bf16")]
    assert all(r["items_per_second"] > 0 and r["backbone_items_per_second"] > 0 for r in rows)
    assert 0 < rows[0]["flop_share"] < 1 and rows[0]["flop_share"] == rows[1]["flop_share"]  # counted once
    check.print_table(environment(torch.device("cpu")), check.table_rows(evaluator, rows))
    printed = capsys.readouterr().out
    assert "evaluator, 30 x 400, both directions, full set (cpu)" in printed
    assert "dcmh training, bf16 (toy-cnn, batch" in printed and "of the bare backbone's" in printed
    assert "FLOP share" in printed


def test_the_peer_ports_input_files_read_as_its_loader_reads_them(tmp_path):
    """benchmarks/peer_dcmh.py writes what WendellGul/DCMH reads: data_handler.load_data's three
    HDF5 arrays, and ImgModule._init's indexing of imagenet-vgg-f.mat (``layers[0][k][0][0][0][0]``
    = (filters, biases) of mat layer k; ``normalization[0][0][0]`` = the average image), at CNN-F's
    real widths. (The port itself is not in this repository; its run is gpu-check's.)"""
    import h5py
    import scipy.io

    sys.path.insert(0, str(SCRIPT.parent))
    from peer_dcmh import write_flickr, write_vgg_f

    with h5py.File(write_flickr(tmp_path / "FLICKR-25K.mat", items=12), "r") as f:
        assert f["images"][:].shape == (12, 3, 224, 224) and f["YAll"].shape == (12, 1386)
        assert f["LAll"].shape == (12, 24) and (f["LAll"][:].sum(1) >= 1).all()
    data = scipy.io.loadmat(write_vgg_f(tmp_path / "imagenet-vgg-f.mat"))
    weights = data["layers"][0]
    # the port's nn.Sequential index -> mat layer (k - 1 past its inserted ZeroPad2d) -> torch shape
    expected = {0: (64, 3, 11, 11), 5: (256, 64, 5, 5), 9: (256, 256, 3, 3), 11: (256, 256, 3, 3),
                13: (256, 256, 3, 3), 16: (4096, 256, 6, 6), 18: (4096, 4096, 1, 1)}
    for k, shape in expected.items():
        layer = k - 1 if k > 1 else k
        filters, biases = weights[layer][0][0][0][0][0], weights[layer][0][0][0][0][1]
        assert filters.transpose().shape == shape and biases.reshape(-1).shape == (shape[0],)
    assert data["normalization"][0][0][0].transpose().shape == (3, 224, 224)
