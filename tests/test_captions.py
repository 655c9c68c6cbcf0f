"""Captions as a text modality: stored in the canonical file and covered by its digest, derived for
the toy without moving any existing run, tokenized for CLIP's text tower, and refused where a
method cannot read them."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from cmhbench.data import load_canonical, write_canonical
from cmhbench.data.digest import captions_digest
from cmhbench.errors import CmhbenchError
from cmhbench.request import RunRequest
from cmhbench.runner import plan


def _arrays(n=6):
    rng = np.random.default_rng(0)
    return dict(images=rng.integers(0, 255, (n, 8, 8, 3), dtype=np.uint8), labels=np.eye(3, dtype=np.uint8)[np.arange(n) % 3],
                splits={"query": np.array([0, 1]), "retrieval": np.arange(2, n), "train": np.arange(2, n)},
                name="t", version="1", label_names=["a", "b", "c"], source_sha256={}, image_kind="pixels")


CAPTIONS = ["a cat on a mat", "Ünïcode — naïve café", "", "tags: sky,sea", "emoji 🙂", "x" * 300]


def test_caption_only_file_round_trips(tmp_path):
    path = write_canonical(tmp_path / "c.h5", texts=None, captions=CAPTIONS, text_kind="captions", **_arrays())
    dataset = load_canonical(path)
    assert dataset.texts is None and dataset.text_kind == "captions" and dataset.text_dim == 0
    assert list(dataset.captions) == CAPTIONS


def test_captions_beside_a_bag_of_words(tmp_path):
    texts = np.ones((6, 4), dtype=np.float32)
    dataset = load_canonical(write_canonical(tmp_path / "c.h5", texts=texts, captions=CAPTIONS, text_kind="bow",
                                             **_arrays()))
    assert dataset.text_dim == 4 and list(dataset.captions) == CAPTIONS


def test_an_edited_caption_is_refused(tmp_path):
    path = write_canonical(tmp_path / "c.h5", texts=None, captions=CAPTIONS, text_kind="captions", **_arrays())
    with h5py.File(path, "r+") as f:
        f["captions"][2] = "a dog"
    with pytest.raises(CmhbenchError, match="do not match the content digest"):
        load_canonical(path)


def test_captions_kind_without_captions_is_refused(tmp_path):
    path = write_canonical(tmp_path / "c.h5", texts=None, captions=CAPTIONS, text_kind="captions", **_arrays())
    with h5py.File(path, "r+") as f:
        del f["captions"]
    with pytest.raises(CmhbenchError, match="no '/captions'"):
        load_canonical(path)


def test_captions_digest_is_order_and_boundary_sensitive():
    assert captions_digest(["ab", "c"]) != captions_digest(["a", "bc"])
    assert captions_digest(["a", "b"]) != captions_digest(["b", "a"])
    assert captions_digest(["a", "b"]) == captions_digest(np.array(["a", "b"], dtype=object))


def test_toy_captions_name_its_words_and_leave_its_runs_where_they_were():
    """Each caption names exactly the item's bag-of-words columns; opening the toy gives the content
    digest the board's toy v2 results record, so no existing run moved."""
    import json
    from pathlib import Path

    from cmhbench_datasets.toy import open_toy, word_names

    dataset = open_toy({})
    names = word_names(dataset.text_dim)
    assert len(set(names)) == len(names)
    for row in (0, 1, 57):
        assert dataset.captions[row].split() == [names[j] for j in np.flatnonzero(dataset.texts[row])]
    board = Path(__file__).resolve().parent.parent / "leaderboard" / "results" / "toy"
    recorded = {json.loads(p.read_text())["dataset"].get("content_sha256") for p in board.rglob("*.json")
                if json.loads(p.read_text())["protocol"]["version"] == 2 and
                json.loads(p.read_text())["dataset"].get("options") == {}}
    assert recorded == {dataset.content_sha256}


def test_a_caption_run_records_the_captions_digest_and_a_bow_run_does_not():
    from cmhbench_datasets.toy import open_toy

    dataset = open_toy({"size": 100})
    clip_plan = plan(RunRequest(method="dchmt", dataset="toy", bits=16, dataset_options={"size": 100}))
    assert clip_plan.definition["dataset"]["captions_sha256"] == captions_digest(dataset.captions)
    assert clip_plan.encoders == {"image": {"name": "clip-tiny", "weights": "toy"},
                                  "text": {"name": "clip-tiny-text", "weights": "toy"}}
    bow_plan = plan(RunRequest(method="dcmh", dataset="toy", bits=16, dataset_options={"size": 100}))
    assert "captions_sha256" not in bow_plan.definition["dataset"]


def test_clip_methods_need_captions_and_a_clip(prepared_wiki):
    with pytest.raises(CmhbenchError, match="dchmt reads captions.*wiki has none"):
        plan(RunRequest(method="dchmt", dataset="wiki", bits=16))
    with pytest.raises(CmhbenchError, match="--image-encoder toy-cnn has no text tower"):
        plan(RunRequest(method="mith", dataset="toy", bits=16, image_encoder="toy-cnn"))
    # a bag-of-words method on a caption-only dataset: one line naming what it cannot read
    from cmhbench.runner import choose_encoders
    from cmhbench.plugins.registry import get_registry
    from cmhbench.data.dataset import Dataset

    registry = get_registry()
    captions_only = Dataset(name="c", version="1", images=np.zeros((4, 8, 8, 3), np.uint8), texts=None,
                            labels=np.eye(4, dtype=np.uint8), splits={}, label_names=list("abcd"),
                            text_kind="captions", captions=np.array(["a"] * 4, dtype=object))
    with pytest.raises(CmhbenchError, match="dcmh reads texts with identity, which cannot read dataset c.s captions texts; only CLIP methods"):
        choose_encoders(RunRequest(method="dcmh", dataset="toy", bits=16), registry.method("dcmh"),
                        registry.dataset("toy"), captions_only, registry)


def test_split_export_carries_the_captions(tmp_path):
    """`cmhbench data splits --with-arrays` gives outside code the captions it must train on too."""
    from cmhbench.results.submit import export_splits
    from cmhbench_datasets.toy import open_toy

    export_splits("toy", tmp_path / "splits.npz", dataset_options={"size": 100}, with_arrays=True)
    with np.load(tmp_path / "splits.npz", allow_pickle=False) as data:
        assert list(data["captions"]) == list(open_toy({"size": 100}).captions)
        assert data["texts"].shape == (100, 400)
