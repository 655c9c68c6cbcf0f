"""Retrieval cost: the exhaustive top-k search against brute force, faiss's indexes measured against
it, the `retrieval-bench` command and the board's retrieval page."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cmhbench.errors import CmhbenchError
from cmhbench.leaderboard.retrieval import load_retrieval
from cmhbench.leaderboard.site import build_site
from cmhbench.results.codes_file import StoredCodes, write_codes
from cmhbench.retrieval.bench import INDEXES, faiss_bytes, learned, measure, synthetic_codes
from cmhbench.retrieval.search import HammingIndex
from conftest import run_cli
from leaderboard_fixtures import make_result, write_result


@pytest.mark.parametrize("bits", [8, 16, 64, 100, 200])
def test_top_k_is_the_stable_brute_force_ranking(bits):
    rng = np.random.default_rng(bits)
    database = rng.choice(np.array([-1, 1], np.int8), (1500, bits))
    database[700:900] = database[rng.integers(0, 50, 200)]  # many exact ties
    queries = np.concatenate([database[:5], rng.choice(np.array([-1, 1], np.int8), (10, bits))])
    distances = 0.5 * (bits - queries.astype(np.int64) @ database.T.astype(np.int64))
    index = HammingIndex(database)
    for k in (1, 9, 250, 1500):
        found_distances, found_ids = index.search(queries, k)
        order = np.argsort(distances, axis=1, kind="stable")[:, :k]
        np.testing.assert_array_equal(found_ids, order)
        np.testing.assert_array_equal(found_distances, np.take_along_axis(distances, order, 1))
    with pytest.raises(ValueError, match="k=1501"):
        index.search(queries, 1501)


def test_faiss_byte_layout_gives_the_same_distances():
    import faiss

    codes = synthetic_codes(300, 32, seed=1)
    flat = faiss.IndexBinaryFlat(32)
    flat.add(faiss_bytes(codes))
    faiss_distances, _ = flat.search(faiss_bytes(codes[:7]), 300)
    ours, _ = HammingIndex(codes).search(codes[:7], 300)
    np.testing.assert_array_equal(np.sort(faiss_distances, 1), ours)


def test_every_index_is_measured_and_exhaustive_ones_recall_everything():
    import torch

    threads = torch.get_num_threads()
    codes = synthetic_codes(5020, 64, seed=2)
    rows = {m.index: m for m in measure(codes[20:], codes[:20], 50, INDEXES, "synthetic")}
    assert torch.get_num_threads() == threads, "the one-thread timing must not leak into the process"
    assert set(rows) == set(INDEXES)
    assert rows["cmhbench-exhaustive"].recall == rows["faiss-flat"].recall == 1.0
    assert rows["cmhbench-exhaustive"].bytes_per_item == 8.0 and rows["faiss-flat"].bytes_per_item >= 8.0
    for row in rows.values():
        assert 0 < row.recall <= 1 and 0 < row.latency_median_ms <= row.latency_p99_ms and row.items == 5000


def test_learned_codes_come_from_a_codes_file(tmp_path):
    rng = np.random.default_rng(0)
    pm1 = lambda n: rng.choice(np.array([-1, 1], np.int8), (n, 16))  # noqa: E731
    stored = StoredCodes(16, {"query": {"image": pm1(12), "text": pm1(12)}, "retrieval": {"image": pm1(300), "text": pm1(300)}},
                         {"query": np.arange(12), "retrieval": np.arange(12, 312)},
                         {"query": np.ones((12, 3), np.uint8), "retrieval": np.ones((300, 3), np.uint8)})
    write_codes(tmp_path / "16bits-seed0-x.codes.npz", stored)
    rows = list(learned(tmp_path / "16bits-seed0-x.json", 10, ("cmhbench-exhaustive",)))
    assert [(r.codes, r.items, r.queries, r.recall) for r in rows] == [("16bits-seed0-x.json", 300, 12, 1.0)]
    with pytest.raises(CmhbenchError, match="no codes file 32bits.codes.npz"):
        list(learned(tmp_path / "32bits.json", 10, ("cmhbench-exhaustive",)))


def test_command_writes_a_record_the_board_shows(tmp_path):
    out = tmp_path / "bench.json"
    done = run_cli("retrieval-bench", "--items", "2000,4000", "--bits", "16,32", "--queries", "5", "--k", "10",
                   "--out", str(out))
    assert done.returncode == 0, done.stderr
    record = json.loads(out.read_text())
    assert len(record["measurements"]) == 2 * 2 * len(INDEXES) and record["machine"]["cores"] >= 1
    results = tmp_path / "results"
    write_result(results, make_result("dcmh", seed=0, i2t=0.5, t2i=0.4))
    build_site([results], tmp_path / "site", retrieval=[out])
    page = (tmp_path / "site" / "retrieval.html").read_text()
    assert "faiss-multihash" in page and "timed on one thread" in page
    assert (tmp_path / "site" / "plots" / "retrieval-0-32bits-latency.png").stat().st_size > 1000
    assert "## Retrieval cost" in (tmp_path / "site" / "README.md").read_text()
    assert 'href="retrieval.html"' in (tmp_path / "site" / "index.html").read_text()


@pytest.mark.parametrize("args, message", [
    (["--bits", "12"], "--bits 12: expected a positive multiple of 8"),
    (["--items", "5", "--k", "10"], "--items 5: a database needs at least --k 10 items"),
    (["--indexes", "faiss-lsh"], "--indexes faiss-lsh: expected some of cmhbench-exhaustive"),
    (["--items", "ten"], "--items 'ten': expected comma-separated integers"),
])
def test_bad_options_are_named(args, message):
    done = run_cli("retrieval-bench", "--queries", "2", *args)
    assert done.returncode == 1 and message in done.stderr and "Traceback" not in done.stderr


def test_board_refuses_a_file_that_is_not_a_bench_record(tmp_path):
    (tmp_path / "x.json").write_text(json.dumps({"kind": "something-else"}))
    with pytest.raises(CmhbenchError, match="x.json: not a `cmhbench retrieval-bench --out` file"):
        load_retrieval([tmp_path / "x.json"])
    (tmp_path / "y.json").write_text(json.dumps({"kind": "cmhbench-retrieval-bench", "measurements": [{"codes": "s"}]}))
    with pytest.raises(CmhbenchError, match=r"y.json: measurements\[0\].index is missing"):
        load_retrieval([tmp_path / "y.json"])
