"""The canonical HDF5 format: round trip, and every validation error names file and key."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from cmhbench.data import load_canonical, write_canonical
from cmhbench.errors import CmhbenchError


def arrays(n=30, features=False):
    rng = np.random.default_rng(0)
    images = rng.random((n, 8)).astype(np.float32) if features else rng.integers(0, 255, (n, 8, 8, 3), dtype=np.uint8)
    labels = (rng.random((n, 4)) < 0.4).astype(np.uint8)
    labels[:, 0] |= labels.sum(1) == 0
    return dict(images=images, texts=rng.random((n, 5)).astype(np.float32), labels=labels,
                splits={"query": np.arange(0, 5), "retrieval": np.arange(5, n), "train": np.arange(5, 20)},
                name="tiny", version="1", label_names=list("abcd"), source_sha256={"x": "0" * 64},
                image_kind="features" if features else "pixels", text_kind="bow")


def test_round_trip(tmp_path):
    data = arrays()
    path = write_canonical(tmp_path / "d.h5", **data)
    ds = load_canonical(path)
    assert np.array_equal(ds.images, data["images"]) and np.array_equal(ds.labels, data["labels"])
    assert ds.split_sizes() == {"query": 5, "retrieval": 25, "train": 15}
    assert ds.label_names == list("abcd") and ds.source_sha256 == {"x": "0" * 64}
    with h5py.File(path) as f:
        assert f["images"].chunks == (1, 8, 8, 3)  # chunked by item


def corrupt(tmp_path, mutate, features=False):
    path = write_canonical(tmp_path / "d.h5", **arrays(features=features))
    with h5py.File(path, "r+") as f:
        mutate(f)
    return path


@pytest.mark.parametrize("mutate, message", [
    (lambda f: f.__delitem__("texts"), "missing key '/texts'"),
    (lambda f: f.__delitem__("splits/train"), "missing key '/splits/train'"),
    (lambda f: (f.__delitem__("labels"), f.create_dataset("labels", data=np.ones((29, 4), np.uint8))),
     "'/images' has 30 items but '/labels' has 29"),
    (lambda f: (f.__delitem__("texts"), f.create_dataset("texts", data=np.ones((30,), np.float32))),
     "'/texts' is float32 \\(30,\\), expected float N×T"),
    (lambda f: (f.__delitem__("images"), f.create_dataset("images", data=np.ones((30, 8, 8), np.uint8))),
     "expected uint8 N×H×W×3"),
    (lambda f: f["texts"].__setitem__((3, 2), np.nan), "'/texts' contains NaN or Inf \\(first at row 3\\)"),
    (lambda f: f["labels"].__setitem__((0, 0), 2), "multi-hot 0/1"),
    (lambda f: (f.__delitem__("splits/query"), f.create_dataset("splits/query", data=np.arange(4, 9))),
     "overlap"),
    (lambda f: (f.__delitem__("splits/train"), f.create_dataset("splits/train", data=np.arange(0, 10))),
     "must be drawn from '/splits/retrieval'"),
    (lambda f: (f.__delitem__("splits/query"), f.create_dataset("splits/query", data=np.array([0, 99]))),
     "indices outside 0..29"),
    (lambda f: f.attrs.__delitem__("label_names"), "missing attribute 'label_names'"),
    (lambda f: f.attrs.__setitem__("label_names", json.dumps(["a"])), "1 names for 4 label columns"),
])
def test_validation_errors_name_file_and_key(tmp_path, mutate, message):
    path = corrupt(tmp_path, mutate)
    with pytest.raises(CmhbenchError, match=message) as info:
        load_canonical(path)
    assert str(path) in str(info.value)


def test_feature_images_with_inf(tmp_path):
    path = corrupt(tmp_path, lambda f: f["images"].__setitem__((7, 1), np.inf), features=True)
    with pytest.raises(CmhbenchError, match="'/images' contains NaN or Inf \\(first at row 7\\)"):
        load_canonical(path)


def test_truncated_and_foreign_files(tmp_path):
    path = write_canonical(tmp_path / "d.h5", **arrays())
    raw = path.read_bytes()
    (tmp_path / "cut.h5").write_bytes(raw[: len(raw) // 3])
    with pytest.raises(CmhbenchError, match="cut.h5 is not a readable HDF5 file"):
        load_canonical(tmp_path / "cut.h5")
    (tmp_path / "text.h5").write_text("hello")
    with pytest.raises(CmhbenchError, match="text.h5 is not a readable HDF5 file"):
        load_canonical(tmp_path / "text.h5")
    with pytest.raises(CmhbenchError, match="does not exist"):
        load_canonical(tmp_path / "missing.h5")


def test_invalid_write_leaves_nothing_behind(tmp_path):
    data = arrays()
    data["splits"]["train"] = np.arange(0, 10)  # not inside retrieval: rejected before the rename
    with pytest.raises(CmhbenchError):
        write_canonical(tmp_path / "d.h5", **data)
    assert list(tmp_path.iterdir()) == []


# --- content digest: the file's identity is its arrays ------------------------------------------

@pytest.mark.parametrize("mutate", [
    lambda f: f["labels"].__setitem__(slice(None), 0),  # labels zeroed: still valid multi-hot
    lambda f: f["labels"].__setitem__(slice(None), f["labels"][()][::-1]),  # rows shuffled
    lambda f: f["texts"].__setitem__((0, 0), f["texts"][0, 0] + 1),
    lambda f: f["images"].__setitem__((0, 0, 0, 0), (int(f["images"][0, 0, 0, 0]) + 1) % 256),
    lambda f: (f.__delitem__("splits/train"), f.create_dataset("splits/train", data=np.arange(6, 21))),
], ids=["labels-zeroed", "labels-shuffled", "texts", "images", "split"])
def test_arrays_changed_after_prepare_are_refused(tmp_path, mutate):
    path = corrupt(tmp_path, mutate)
    with pytest.raises(CmhbenchError, match="do not match the content digest") as info:
        load_canonical(path)
    assert str(path) in str(info.value) and "prepare it again" in str(info.value)


def test_a_file_without_content_digest_must_be_prepared_again(tmp_path):
    path = corrupt(tmp_path, lambda f: f.attrs.__delitem__("content_sha256"))
    with pytest.raises(CmhbenchError, match="no content digest.*prepare it again"):
        load_canonical(path)


def test_content_digest_is_the_datasets_identity(tmp_path):
    """Equal arrays give equal digests whatever the file; different labels a different identity."""
    first = load_canonical(write_canonical(tmp_path / "a.h5", **arrays()))
    again = load_canonical(write_canonical(tmp_path / "b.h5", **{**arrays(), "source_sha256": {"y": "1" * 64}}))
    changed = arrays()
    changed["labels"] = changed["labels"][::-1].copy()
    other = load_canonical(write_canonical(tmp_path / "c.h5", **changed))
    assert first.content_sha256 == again.content_sha256 != other.content_sha256
    assert first.describe()["content_sha256"] == first.content_sha256


def test_array_digest_is_independent_of_the_block_size(monkeypatch):
    from cmhbench.data import digest

    array = np.random.default_rng(0).random((50, 7)).astype(np.float32)
    whole = digest.array_digest(array)
    monkeypatch.setattr(digest, "_BLOCK_BYTES", 28 * 3)  # three rows a block
    assert digest.array_digest(array) == whole
    import hashlib
    reference = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode() + array.tobytes()).hexdigest()
    assert whole == reference
