"""The frozen-feature cache: extracted once, reused, keyed by what defines it, never half-written."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from cmhbench.features import cached_features, feature_key
from cmhbench.runner import RunRequest, run
from cmhbench_datasets.toy import open_toy


def test_shallow_method_on_toy_learns_on_the_protocols_frozen_backbone(tmp_path):
    """The toy protocol names its image encoder (toy-cnn, pretrained on disjoint toy images): a
    shallow method learns on its frozen features."""
    outcome = run(RunRequest(method="cvh", dataset="toy", bits=8, seed=0, device="cpu", quiet=True,
                             dataset_options={"size": 100}, results_dir=tmp_path))
    assert outcome.result["encoders"]["image"] == {"name": "toy-cnn", "weights": "toy", "frozen": True}


def test_features_are_extracted_once_and_reused(tmp_path):
    request = dict(method="cmfh", dataset="toy", bits=8, seed=0, device="cpu", quiet=True,
                   dataset_options={"size": 100, "image_size": 64}, image_encoder="alexnet")
    first = run(RunRequest(**request, results_dir=tmp_path / "a"))
    assert first.result["encoders"]["image"] == {"name": "alexnet", "weights": "none", "frozen": True}
    from cmhbench.fsutil import cache_home

    cached = list((cache_home() / "features").glob("toy-alexnet-*.h5"))
    assert len(cached) == 1
    stamp = cached[0].stat().st_mtime_ns
    second = run(RunRequest(**request, results_dir=tmp_path / "b"))
    assert cached[0].stat().st_mtime_ns == stamp  # reused, not rewritten
    assert second.result["metrics"] == first.result["metrics"]
    # the result describes the dataset as planned, so its run_id recomputes (the leaderboard checks)
    from cmhbench.leaderboard.load import validate

    assert validate(first.result) is None


def test_key_changes_with_encoder_weights_and_dataset(tmp_path):
    dataset = open_toy({"size": 100})
    base = feature_key(dataset, "alexnet", "none")
    assert feature_key(dataset, "vgg19", "none") != base
    assert feature_key(dataset, "alexnet", "imagenet") != base
    assert feature_key(dataclasses.replace(dataset, version="other"), "alexnet", "none") != base
    # a randomly initialised encoder differs per run seed; pretrained weights do not
    assert feature_key(dataset, "alexnet", "none", init_seed=1) != base
    assert feature_key(dataset, "alexnet", "imagenet", init_seed=1) == feature_key(dataset, "alexnet", "imagenet")
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"one")
    first = feature_key(dataset, "alexnet", str(weights))
    weights.write_bytes(b"two")
    assert feature_key(dataset, "alexnet", str(weights)) != first


class Exploding(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        if self.calls > 1:
            raise RuntimeError("killed mid-extraction")
        return torch.zeros(len(x), 4)


def test_interrupted_extraction_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("CMHBENCH_HOME", str(tmp_path))
    dataset = open_toy({"size": 600})
    with pytest.raises(RuntimeError):
        cached_features(dataset, "exploding", "none", Exploding(), torch.device("cpu"))
    assert not list((tmp_path / "features").glob("*.h5"))


def test_features_are_extracted_in_the_runs_precision_and_cached_apart(tmp_path, monkeypatch):
    """A bf16 run's features come from the encoder under bf16 autocast (exercised here on the CPU,
    as on a GPU), an fp32 run's from plain fp32, and the two never share a cache file."""
    import h5py
    import numpy as np

    from cmhbench.plugins.registry import get_registry

    monkeypatch.setenv("CMHBENCH_HOME", str(tmp_path))
    dataset = open_toy({"size": 40, "image_size": 32})
    torch.manual_seed(0)
    encoder = get_registry().encoder("toy-cnn").create("none", None).eval()
    images = torch.from_numpy(np.ascontiguousarray(dataset.images[()]))
    with torch.inference_mode():
        plain = encoder(images).float().numpy()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            halved = encoder(images).float().numpy()
    paths = {precision: cached_features(dataset, "toy-cnn", "none", encoder, torch.device("cpu"), precision=precision)
             for precision in ("fp32", "bf16")}
    assert paths["fp32"] != paths["bf16"]
    with h5py.File(paths["fp32"]) as fp32, h5py.File(paths["bf16"]) as bf16:
        np.testing.assert_array_equal(fp32["features"][()], plain)
        np.testing.assert_array_equal(bf16["features"][()], halved)
    assert not np.array_equal(plain, halved)


def test_a_cache_file_that_does_not_say_its_precision_is_extracted_again(tmp_path, monkeypatch):
    """Files from before the precision was recorded may hold a GPU's bf16 features under the fp32
    key: they are replaced, not read."""
    import h5py

    from cmhbench.plugins.registry import get_registry

    monkeypatch.setenv("CMHBENCH_HOME", str(tmp_path))
    dataset = open_toy({"size": 40, "image_size": 32})
    encoder = get_registry().encoder("toy-cnn").create("none", None).eval()
    path = cached_features(dataset, "toy-cnn", "none", encoder, torch.device("cpu"))
    with h5py.File(path, "r+") as f:
        del f.attrs["precision"]
        f["features"][0, 0] = 12345.0
    assert cached_features(dataset, "toy-cnn", "none", encoder, torch.device("cpu")) == path
    with h5py.File(path, "r") as f:
        assert f.attrs["precision"] == "fp32" and f["features"][0, 0] != 12345.0
