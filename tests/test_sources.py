"""Device feeds: the resident and the streamed (HDF5 block) paths give the same items."""

from __future__ import annotations

import h5py
import numpy as np
import torch

from cmhbench.data import load_canonical, write_canonical
from cmhbench.data.sources import SplitData


def make(tmp_path, n=50):
    rng = np.random.default_rng(0)
    labels = (rng.random((n, 3)) < 0.5).astype(np.uint8)
    path = write_canonical(
        tmp_path / "d.h5", images=rng.integers(0, 255, (n, 4, 4, 3), dtype=np.uint8),
        texts=rng.random((n, 6)).astype(np.float32), labels=labels,
        splits={"query": np.arange(0, 10), "retrieval": np.arange(10, n), "train": np.arange(12, n, 2)},
        name="t", version="1", label_names=list("abc"), source_sha256={}, image_kind="pixels", text_kind="bow")
    return load_canonical(path), path


def collect(split: SplitData, **kwargs):
    seen = {}
    for batch in split.batches(7, **kwargs):
        for p, img, txt, lab in zip(batch.positions.tolist(), batch.images, batch.texts, batch.labels, strict=True):
            seen[p] = (img.numpy(), txt.numpy(), lab.numpy())
    return seen


def test_streamed_equals_resident(tmp_path, monkeypatch):
    dataset, path = make(tmp_path)
    resident = SplitData(dataset, "train", "cpu")
    assert resident.store.feeds["images"].is_resident

    streamed_ds, _ = make(tmp_path / "s")
    streamed_ds.images = h5py.File(tmp_path / "s" / "d.h5")["images"]  # as a large set is loaded
    monkeypatch.setattr("cmhbench.data.sources._STREAM_BLOCK_ITEMS", 5)
    streamed = SplitData(streamed_ds, "train", "cpu")
    assert not streamed.store.feeds["images"].is_resident

    a = collect(resident)
    b = collect(streamed, shuffle=True, generator=torch.Generator().manual_seed(0))
    assert sorted(a) == sorted(b) == list(range(len(resident)))
    for position in a:
        rows = dataset.splits["train"][position]
        np.testing.assert_array_equal(a[position][0], dataset.images[rows])
        for x, y in zip(a[position], b[position], strict=True):
            np.testing.assert_array_equal(x, y)


def test_shuffle_is_reproducible_and_drop_last(tmp_path):
    dataset, _ = make(tmp_path)
    split = SplitData(dataset, "train", "cpu")
    def order(seed):
        return [b.positions.tolist() for b in split.batches(7, shuffle=True, generator=torch.Generator().manual_seed(seed))]

    assert order(1) == order(1) and order(1) != order(2)
    sizes = [len(b.positions) for b in split.batches(7, drop_last=True)]
    assert sizes == [7] * (len(split) // 7)
