"""The toy dataset: deterministic, well-formed, and learnable from either modality."""

from __future__ import annotations

import numpy as np
import pytest

from cmhbench.errors import CmhbenchError
from cmhbench_datasets import toy


def test_same_seed_same_bytes_other_seed_differs():
    a = toy.generate(size=60, image_size=64, vocabulary=200, seed=3)
    b = toy.generate(size=60, image_size=64, vocabulary=200, seed=3)
    c = toy.generate(size=60, image_size=64, vocabulary=200, seed=4)
    for key in ("images", "texts", "labels"):
        assert np.array_equal(a[key], b[key])
    assert not np.array_equal(a["images"], c["images"])
    for split in ("query", "retrieval", "train"):
        assert np.array_equal(a["splits"][split], b["splits"][split])


def test_splits_follow_the_protocol():
    data = toy.generate(size=200, image_size=64, vocabulary=200, seed=0)
    q, r, t = (data["splits"][s] for s in ("query", "retrieval", "train"))
    assert len(q) == 20 and len(r) == 180 and len(t) == 100
    assert not set(q) & set(r)
    assert set(t) <= set(r)
    assert sorted(set(q) | set(r)) == list(range(200))


def test_labels_cooccur_and_every_item_has_one():
    data = toy.generate(size=2000, image_size=64, vocabulary=200, seed=0)
    labels = data["labels"].astype(float)
    assert labels.sum(1).min() >= 1
    p = labels.mean(0)
    joint = labels.T @ labels / len(labels)
    lift = joint / np.outer(p, p)
    np.fill_diagonal(lift, 1.0)
    assert lift.max() > 2.0  # scene structure: some label pairs co-occur far above chance


def test_each_modality_carries_the_labels():
    data = toy.generate(size=600, image_size=64, vocabulary=200, seed=1)
    labels, texts, images = data["labels"], data["texts"], data["images"]
    # text: a label's own words are much more frequent when the label is present
    present = texts[labels[:, 0] == 1].mean(0)
    absent = texts[labels[:, 0] == 0].mean(0)
    assert (present - absent).max() > 0.2
    # image: the red-disc label makes strongly red pixels far more common
    red = ((images[..., 0] > 180) & (images[..., 1] < 90) & (images[..., 2] < 90)).mean((1, 2))
    assert red[labels[:, 0] == 1].mean() > 5 * red[labels[:, 0] == 0].mean()


def test_bad_options_are_named():
    with pytest.raises(CmhbenchError, match="image_size=8: expected at least 16"):
        toy.generate(size=100, image_size=8)
    with pytest.raises(CmhbenchError, match="unknown toy dataset option"):
        toy.parse_options({"sizes": 10})
    with pytest.raises(CmhbenchError, match="size=.ten.: expected an integer"):
        toy.parse_options({"size": "ten"})


def test_a_stale_or_damaged_cached_toy_is_generated_again(tmp_path, monkeypatch):
    """The toy is a cache, not user data: a cached file that no longer validates (written before
    content digests, or edited) is regenerated, with the same content as a fresh one."""
    import h5py

    from cmhbench_datasets.toy import open_toy

    monkeypatch.setenv("CMHBENCH_HOME", str(tmp_path))
    fresh = open_toy({"size": 100})
    with h5py.File(fresh.path, "r+") as f:
        f["labels"][0] = 1 - f["labels"][0]
    again = open_toy({"size": 100})
    assert again.content_sha256 == fresh.content_sha256
