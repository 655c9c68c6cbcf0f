"""`cmhbench evaluate` on code files written by other code bases (.npz and HDF5, ±1/0-1/packed)."""

from __future__ import annotations

import json

import h5py
import numpy as np

from cmhbench.evaluation import evaluate
from conftest import run_cli


def sample(seed=0, bits=20):
    rng = np.random.default_rng(seed)
    return {
        "query_image": rng.choice([-1, 1], (15, bits)).astype(np.int8),
        "query_text": rng.choice([-1, 1], (15, bits)).astype(np.int8),
        "retrieval_image": rng.choice([-1, 1], (90, bits)).astype(np.int8),
        "retrieval_text": rng.choice([-1, 1], (90, bits)).astype(np.int8),
        "query_labels": (rng.random((15, 4)) < 0.3).astype(np.uint8),
        "retrieval_labels": (rng.random((90, 4)) < 0.3).astype(np.uint8),
    }


def expected(data):
    return {"i2t": evaluate(data["query_image"], data["retrieval_text"], data["query_labels"], data["retrieval_labels"], device="cpu"),
            "t2i": evaluate(data["query_text"], data["retrieval_image"], data["query_labels"], data["retrieval_labels"], device="cpu")}


def score(tmp_path, path, *extra):
    out = tmp_path / "metrics.json"
    result = run_cli("evaluate", str(path), "--device", "cpu", "-o", str(out), *extra, env={"COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    return json.loads(out.read_text())


def test_npz_pm1(tmp_path):
    data = sample()
    np.savez(tmp_path / "codes.npz", **data)
    assert score(tmp_path, tmp_path / "codes.npz") == json.loads(json.dumps(expected(data)))


def test_hdf5_bits_and_packed(tmp_path):
    data = sample(1)
    with h5py.File(tmp_path / "bits.h5", "w") as f:
        for key, value in data.items():
            f[key] = (value > 0).astype(np.uint8) if key.endswith(("image", "text")) else value
    with h5py.File(tmp_path / "packed.h5", "w") as f:
        for key, value in data.items():
            f[key] = np.packbits(value > 0, axis=1) if key.endswith(("image", "text")) else value
        f["bits"] = 20
    want = json.loads(json.dumps(expected(data)))
    assert score(tmp_path, tmp_path / "bits.h5") == want
    assert score(tmp_path, tmp_path / "packed.h5") == want


def test_missing_arrays_are_named(tmp_path):
    data = sample()
    del data["retrieval_labels"]
    np.savez(tmp_path / "codes.npz", **data)
    result = run_cli("evaluate", str(tmp_path / "codes.npz"), "--device", "cpu", env={"COLUMNS": "300"})
    assert result.returncode == 1 and "missing array 'retrieval_labels'" in result.stderr
    data = sample()
    del data["query_text"]
    np.savez(tmp_path / "codes.npz", **data)
    result = run_cli("evaluate", str(tmp_path / "codes.npz"), "--directions", "t2i", "--device", "cpu", env={"COLUMNS": "300"})
    assert result.returncode == 1 and "direction t2i needs array 'query_text'" in result.stderr
    result = run_cli("evaluate", str(tmp_path / "nothing.npz"), env={"COLUMNS": "300"})
    assert result.returncode == 1 and "does not exist" in result.stderr
