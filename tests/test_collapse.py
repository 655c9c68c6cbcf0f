"""The collapse diagnostic: distinct codes, the largest code group and bit balance, by hand."""

from __future__ import annotations

import numpy as np

from cmhbench.data.dataset import Dataset
from cmhbench.leaderboard.aggregate import result_collapsed
from cmhbench.evaluation.collapse import code_statistics, is_collapsed


def _dataset(labels):
    n = len(labels)
    return Dataset(name="t", version="1", images=np.zeros((n, 1), np.float32), texts=np.zeros((n, 1), np.float32),
                   labels=np.asarray(labels, dtype=np.uint8),
                   splits={"query": np.arange(4), "retrieval": np.arange(4, n), "train": np.arange(4, n)},
                   label_names=["a", "b"], image_kind="features", text_kind="features")


def _split_labels(dataset):
    return {split: dataset.labels[dataset.splits[split]] for split in ("query", "retrieval")}


def test_statistics_by_hand():
    labels = [[1, 0], [1, 0], [0, 1], [0, 1]] + [[1, 0]] * 3 + [[0, 1]]
    query_image = np.array([[1, 1], [1, 1], [1, 1], [1, 1]], dtype=np.int8)  # every query shares one code
    query_text = np.array([[1, 1], [1, -1], [-1, 1], [-1, -1]], dtype=np.int8)
    retrieval = np.array([[1, 1], [1, 1], [-1, -1], [-1, -1]], dtype=np.int8)
    stats = code_statistics({"query": {"image": query_image, "text": query_text},
                             "retrieval": {"image": retrieval, "text": retrieval}}, _split_labels(_dataset(labels)))
    image = stats["query"]["image"]
    assert image["distinct"] == 1 and image["top_code_share"] == 1.0
    assert image["bit_balance"] == [1.0, 1.0]
    assert stats["query"]["top_label_set_share"] == 0.5
    assert image["collapsed"]  # 1.0 > 0.5 and > 1.5 × 0.5
    assert stats["query"]["text"]["bit_balance"] == [0.5, 0.5]
    assert not stats["query"]["text"]["collapsed"] and stats["query"]["text"]["distinct"] == 4
    # half the retrieval items share a code, but three in four share a label set: not collapsed
    assert not stats["retrieval"]["image"]["collapsed"]


def test_one_code_per_class_is_not_collapse():
    """Single-label data with ten equal classes: one code per class is the ideal, not collapse."""
    assert not is_collapsed(0.1, 0.1)
    assert is_collapsed(0.9, 0.1)
    assert not is_collapsed(0.6, 0.5)  # a dominant label set explains a dominant code


def test_the_leaderboard_reads_the_flag():
    assert result_collapsed({"codes": {"query": {"top_label_set_share": 0.1, "image": {"collapsed": True}}}})
    assert not result_collapsed({"codes": {"query": {"top_label_set_share": 0.1, "image": {"collapsed": False}}}})
    assert not result_collapsed({})  # results from before the diagnostic
