"""Frozen-encoder features, extracted once per (dataset, encoder, weights) and cached.

Shallow methods learn on fixed feature vectors. For a dataset of pixels, the image encoder runs once
over every item in inference mode, batched on the device, and its features are written in blocks to
``$CMHBENCH_HOME/features/DATASET-KEY.h5`` atomically (a half-written file is never visible under
the final name). KEY hashes the dataset's name, version and source digests and the encoder's name
and weights (the file's sha256 for local weights), so any change of these makes a new file. An
encoder with ``weights=none`` is a random network, different for every run seed: its key includes
the seed (pretrained weights do not depend on it). Features are extracted in the run's precision, and
bf16 ones are cached apart from fp32 ones.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Callable

import h5py
import numpy as np
import torch

from cmhbench.data.dataset import Dataset
from cmhbench.data.readers import sha256_file
from cmhbench.encoders.base import Encoder
from cmhbench.fsutil import atomic_path, cache_home
from cmhbench.train.precision import autocast

FORMAT_VERSION = 1
_BATCH = 256
_IN_MEMORY_BYTES = 2 * 1024**3


def feature_key(dataset: Dataset, encoder: str, weights: str, init_seed: int = 0, precision: str = "fp32") -> str:
    weights_id = weights
    if weights not in ("none", "imagenet", "") and Path(weights).expanduser().is_file():
        weights_id = "sha256:" + sha256_file(Path(weights).expanduser())
    if weights in ("none", ""):
        weights_id = f"random-init-seed-{init_seed}"
    identity = {"format": FORMAT_VERSION, "dataset": dataset.name, "version": dataset.version,
                "sources": dataset.source_sha256, "encoder": encoder, "weights": weights_id}
    if precision != "fp32":  # (fp32 features keep the key they had before precision was part of it)
        identity["precision"] = precision
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:20]


def cached_features(dataset: Dataset, encoder_name: str, weights: str, encoder: Encoder,
                    device: torch.device, init_seed: int = 0, precision: str = "fp32",
                    on_items: Callable[[int], None] | None = None) -> Path:
    """Path of the cached features, extracting them first when they are not there. ``init_seed`` is
    the seed the (randomly initialised, for weights=none) encoder was created under; ``precision``
    the run's (bf16: extracted under bf16 autocast, and cached apart); ``on_items(n)`` is told as
    each batch of n items is extracted (a progress bar)."""
    key = feature_key(dataset, encoder_name, weights, init_seed, precision)
    path = cache_home() / "features" / f"{dataset.name}-{encoder_name}-{key}.h5"
    if path.exists() and _recorded_precision(path) == precision:
        return path
    encoder = encoder.to(device).eval()
    n = dataset.num_items
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f, torch.inference_mode():
        node = None
        for start in range(0, n, _BATCH):
            block = torch.from_numpy(np.ascontiguousarray(dataset.images[start:start + _BATCH])).to(device)
            with autocast(precision, device):
                features = encoder(block).float().cpu().numpy()
            if node is None:
                node = f.create_dataset("features", shape=(n, features.shape[1]), dtype="float32",
                                        chunks=(min(n, _BATCH), features.shape[1]))
            node[start:start + len(features)] = features
            if on_items is not None:
                on_items(len(features))
        f.attrs["encoder"] = encoder_name
        f.attrs["weights"] = weights
        f.attrs["dataset"] = dataset.name
        f.attrs["dataset_version"] = dataset.version
        f.attrs["precision"] = precision
    return path


def _recorded_precision(path: Path) -> str | None:
    """The precision a cache file was extracted in; None for files written before it was recorded
    (a GPU then extracted in bf16 under the fp32 key, so those are extracted again)."""
    with h5py.File(path, "r") as f:
        value = f.attrs.get("precision")
    return value.decode() if isinstance(value, bytes) else value


def with_features(dataset: Dataset, path: Path) -> Dataset:
    """A view of ``dataset`` whose image side is the cached features."""
    handle = h5py.File(path, "r")
    node = handle["features"]
    features = node[()] if node.size * 4 <= _IN_MEMORY_BYTES else node
    view = dataclasses.replace(dataset, images=features, image_kind="features",
                               version=f"{dataset.version}+features:{path.stem}")
    view.__dict__.pop("_device_stores", None)
    return view
