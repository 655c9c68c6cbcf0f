"""bf16 on the CPU: the autocast path a GPU run takes, exercised where the tests run."""

from __future__ import annotations

import math

import pytest

from cmhbench.plugins.registry import get_registry
from cmhbench.runner import RunRequest, run

TINY_TOY = {"size": 80, "image_size": 32, "vocabulary": 160}
BUILT_IN = ["dcmh", "ssah", "daph", "cvh", "scm-orth", "scm-seq", "cmfh", "dchmt", "mith", "dsph"]
#: the CLIP methods fine-tune the toy's tiny CLIP (both towers); the others a random toy-cnn
CLIP_METHODS = {"dchmt", "mith", "dsph"}


def test_every_built_in_method_is_covered():
    registry = get_registry()
    built_in = {name for name in registry.names("method") if "(builtin)" in registry.origin("method", name)}
    assert built_in == set(BUILT_IN)


@pytest.mark.parametrize("method", BUILT_IN)
def test_trains_under_bf16_autocast_on_the_cpu(method, tmp_path):
    outcome = run(RunRequest(method=method, dataset="toy", bits=16, seed=0, epochs=1, device="cpu",
                             precision="bf16", quiet=True, dataset_options=TINY_TOY, results_dir=tmp_path,
                             image_encoder="clip-tiny" if method in CLIP_METHODS else "toy-cnn",
                             image_weights="none"))
    result = outcome.result
    assert result["training"]["precision"] == "bf16"
    losses = [value for entry in result["training"]["history"] for key, value in entry.items()
              if key not in ("stage", "epoch")]
    assert all(math.isfinite(v) for v in losses), losses
    for split in ("query", "retrieval"):  # the runner already refuses codes outside {-1, +1}
        for modality in ("image", "text"):
            assert result["codes"][split][modality]["items"] > 0
