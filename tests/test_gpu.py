"""Every device path on a CUDA GPU: resident and streamed data, bf16 autocast training, the
evaluator's half-precision path against the CPU kernel, and resume. Skipped without a GPU;
`benchmarks/gpu-check` runs them first (`pytest -m gpu`)."""

from __future__ import annotations

import math

import h5py
import numpy as np
import pytest
import torch

from cmhbench.data.sources import SplitData
from cmhbench.evaluation import evaluate
from cmhbench.runner import RunRequest, run
from conftest import crash_after_checkpoints
from test_clip_methods import bert_adam_run
from test_evaluator import flatten, random_case
from test_precision import BUILT_IN, CLIP_METHODS, TINY_TOY
from test_sources import collect, make

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def test_resident_and_streamed_batches_on_the_gpu_are_the_cpus(tmp_path, monkeypatch):
    dataset, _ = make(tmp_path)
    on_cpu = collect(SplitData(dataset, "train", "cpu"))
    resident = SplitData(dataset, "train", "cuda")
    assert resident.store.feeds["images"].is_resident
    assert resident.store.feeds["images"].resident_tensor.device.type == "cuda"

    streamed_ds, _ = make(tmp_path / "s")
    streamed_ds.images = h5py.File(tmp_path / "s" / "d.h5")["images"]
    monkeypatch.setattr("cmhbench.data.sources._STREAM_BLOCK_ITEMS", 5)
    streamed = SplitData(streamed_ds, "train", "cuda")
    assert not streamed.store.feeds["images"].is_resident
    for split, kwargs in ((resident, {}), (streamed, {"shuffle": True, "generator": torch.Generator().manual_seed(0)})):
        seen = {}
        for batch in split.batches(7, **kwargs):
            assert batch.images.device.type == "cuda" and batch.positions.device.type == "cuda"
            for p, img, txt, lab in zip(batch.positions.tolist(), batch.images.cpu(), batch.texts.cpu(),
                                        batch.labels.cpu(), strict=True):
                seen[p] = (img.numpy(), txt.numpy(), lab.numpy())
        assert sorted(seen) == sorted(on_cpu)
        for position, arrays in seen.items():
            for x, y in zip(arrays, on_cpu[position], strict=True):
                np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("bits", [16, 64, 128])
def test_evaluator_gpu_path_matches_the_cpu_kernel(bits):
    q, r, ql, rl = random_case(np.random.default_rng(bits), bits, n_query=120, n_retrieval=3000)
    on_cpu = flatten(evaluate(q, r, ql, rl, map_at=[5, 100], device="cpu"))
    on_gpu = flatten(evaluate(q, r, ql, rl, map_at=[5, 100], device="cuda"))
    assert on_gpu.keys() == on_cpu.keys()
    for key, value in on_cpu.items():
        assert on_gpu[key] == (value if isinstance(value, int) else pytest.approx(value, rel=1e-12, abs=1e-14)), key


@pytest.mark.parametrize("method", BUILT_IN)
@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_every_built_in_method_trains_on_the_gpu(method, precision, tmp_path):
    outcome = run(RunRequest(method=method, dataset="toy", bits=16, seed=0, epochs=1, device="cuda",
                             precision=precision, quiet=True, dataset_options=TINY_TOY, results_dir=tmp_path,
                             image_encoder="clip-tiny" if method in CLIP_METHODS else "toy-cnn",
                             image_weights="none"))
    result = outcome.result
    assert result["training"]["precision"] == precision
    assert result["environment"]["device"].startswith("cuda")
    losses = [value for entry in result["training"]["history"] for key, value in entry.items()
              if key not in ("stage", "epoch")]
    assert all(math.isfinite(v) for v in losses), losses


def test_interrupted_gpu_run_resumes(tmp_path, monkeypatch):
    """On the GPU, cuDNN's and cuBLAS's kernels need not be bitwise reproducible, so the resumed run
    is held to the uninterrupted one's numbers within 0.05 mAP, and to its identity exactly."""
    small = dict(method="dcmh", dataset="toy", bits=16, seed=1, epochs=3, device="cuda",
                 dataset_options={"size": 200}, quiet=True)
    reference = run(RunRequest(**small, results_dir=tmp_path / "a"))
    crash_after_checkpoints(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        run(RunRequest(**small, results_dir=tmp_path / "b"))
    monkeypatch.undo()
    resumed = run(RunRequest(**small, results_dir=tmp_path / "b"))
    assert resumed.result["training"]["resumed_from"] == {"train": 2}
    assert resumed.result["run_id"] == reference.result["run_id"]
    for direction in ("i2t", "t2i"):
        assert abs(resumed.result["metrics"][direction]["map"] - reference.result["metrics"][direction]["map"]) < 0.05


def test_bert_adam_multi_tensor_step_on_the_gpu_is_the_loops():
    """The GPU takes BertAdam's multi-tensor path; its fused kernels may round otherwise than the
    loop's, but not further than float32's last bits (relative 1e-6 after 12 steps)."""
    loop, multi = bert_adam_run(False, device="cuda"), bert_adam_run(True, device="cuda")
    on_cpu = bert_adam_run(False)
    for a, b, c in zip(loop, multi, on_cpu, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(b.cpu(), c, rtol=1e-5, atol=1e-6)
