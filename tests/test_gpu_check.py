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


def test_its_sections_run_on_the_cpu(capsys):
    check = load_script()
    evaluator = check.evaluator_both_directions("cpu", (30, 400, 5, 0.3))
    assert evaluator["same_numbers"] and 0 < evaluator["map"]["i2t"] < 1
    tiny = Scale({"size": 60, "image_size": 32, "vocabulary": 160}, "toy-cnn", "clip-tiny", epochs=1)
    rows = check.throughput(["dcmh"], "cpu", tiny)
    assert [(r["method"], r["precision"]) for r in rows] == [("dcmh", "fp32"), ("dcmh", "bf16")]
    assert all(r["items_per_second"] > 0 and r["backbone_items_per_second"] > 0 for r in rows)
    check.print_table(environment(torch.device("cpu")), check.table_rows(evaluator, rows))
    printed = capsys.readouterr().out
    assert "evaluator, 30 x 400, both directions, full set (cpu)" in printed
    assert "dcmh training, bf16 (toy-cnn, batch" in printed and "of the bare backbone's" in printed
