"""The canonical labels the board pins codes to, and the typed result's schema versions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cmhbench.errors import CmhbenchError
from cmhbench.evaluation.scoring import labels_digest
from cmhbench.results import RunResult
from cmhbench.results.label_pins import pinned_label_digests
from cmhbench_datasets.label_pins import CANONICAL
from cmhbench_datasets.toy import open_toy
from conftest import run_cli

HERE = Path(__file__).resolve().parent


def test_the_shipped_wiki_digests_are_the_real_releases(prepared_wiki):
    """Preparing the UCSD release again gives the labels whose digests the package ships."""
    from cmhbench.data.prepare import open_prepared

    wiki = open_prepared("wiki")
    shipped = pinned_label_digests({"name": "wiki", "version": wiki.version, "options": {}})
    assert shipped == CANONICAL["wiki"]["1"]
    for split in ("query", "retrieval"):
        assert labels_digest(wiki.labels[wiki.splits[split]]) == shipped[split]


def test_toy_digests_follow_its_options():
    toy = open_toy({"size": 200})
    pins = pinned_label_digests({"name": "toy", "version": toy.version, "options": {"size": 200}})
    assert pins == {split: labels_digest(toy.labels[toy.splits[split]]) for split in ("query", "retrieval")}
    with pytest.raises(CmhbenchError, match="not what this generator gives"):
        pinned_label_digests({"name": "toy", "version": "9:other", "options": {"size": 200}})
    with pytest.raises(CmhbenchError, match="regenerates toys of at most"):
        pinned_label_digests({"name": "toy", "version": toy.version, "options": {"size": 10**8}})
    assert pinned_label_digests({"name": "no-such-dataset", "version": "1"}) is None
    assert pinned_label_digests({"name": "mirflickr", "version": "1:x"}) is None  # no one has pinned it yet


def test_a_label_digest_sees_a_swap():
    labels = np.eye(4, dtype=np.uint8)
    assert labels_digest(labels) != labels_digest(labels[[1, 0, 2, 3]])
    assert labels_digest(labels) == labels_digest(labels.astype(np.int64))  # digested as uint8


def _round_trips(path: Path) -> dict:
    data = json.loads(path.read_text())
    result = RunResult.from_dict(data)
    assert result.run_id == data["run_id"]
    assert {k: v for k, v in result.to_dict().items() if k != "schema_version"} == \
        {k: v for k, v in data.items() if k != "schema_version"}
    return {"schema": data["schema_version"], "has_codes": result.has_codes}


def test_every_result_on_the_board_reads_and_round_trips():
    """Every file on the repository's board is a version-2 result with its codes, and keeps its
    content when written back."""
    from cmhbench.leaderboard.load import result_files

    paths = result_files([HERE.parent / "leaderboard" / "results"])  # not the ignored bookkeeping
    assert len(paths) >= 100
    assert all(_round_trips(path) == {"schema": 2, "has_codes": True} for path in paths)


def test_a_version_1_result_reads_as_one_without_codes():
    """A file the board held before codes were kept (toy v1 DAPH, as written then) still reads, as a
    result without codes, and keeps its content when written back."""
    assert _round_trips(HERE / "schema_v1" / "toy-daph-32bits-seed0.json") == {"schema": 1, "has_codes": False}


def test_data_splits_writes_the_fixed_splits(tmp_path):
    done = run_cli("data", "splits", "toy", "--dataset-opt", "size=200", "-o", str(tmp_path / "s.npz"))
    assert done.returncode == 0, done.stderr
    toy = open_toy({"size": 200})
    with np.load(tmp_path / "s.npz") as data:
        for split in ("query", "retrieval", "train"):
            np.testing.assert_array_equal(data[f"{split}_ids"], toy.splits[split])
        np.testing.assert_array_equal(data["labels"], toy.labels)
        assert "images" not in data.files
