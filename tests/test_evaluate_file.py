"""`cmhbench evaluate` on code files written by other code bases (.npz and HDF5, ±1/0-1/packed)."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

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


def refusal(path, **options):
    """The one-line error evaluating ``path`` gives (it must name the file)."""
    from cmhbench.errors import CmhbenchError
    from cmhbench.evaluation.files import evaluate_file

    with pytest.raises(CmhbenchError) as caught:
        evaluate_file(path, device="cpu", **options)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message, message
    return message


def with_changes(tmp_path, name="codes.npz", **changes):
    data = {**sample(), **changes}
    np.savez(tmp_path / name, **data)
    return tmp_path / name


def test_empty_class_index_labels_are_refused_by_name(tmp_path):
    path = with_changes(tmp_path, query_labels=np.zeros((0,), np.int64), retrieval_labels=np.zeros((90,), np.int64))
    assert "'query_labels' has shape (0,): it is empty" in refusal(path)
    path = with_changes(tmp_path, query_labels=np.zeros((0,), np.int64))  # beside multi-hot retrieval labels
    assert "'query_labels' has shape (0,): it is empty" in refusal(path)


@pytest.mark.parametrize("key, value, dtype", [
    ("query_image", np.zeros((15, 20), dtype=[("a", "i1")]), "[('a', 'i1')]"),
    ("query_image", np.ones((15, 20), complex), "complex128"),
    ("retrieval_text", np.full((90, 20), "1"), "<U1"),
    ("query_labels", np.zeros(15, dtype=[("a", "i4")]), "[('a', '<i4')]"),
    ("retrieval_labels", np.ones((90, 4), complex), "complex128"),
])
def test_non_numeric_arrays_are_refused_by_name(tmp_path, key, value, dtype):
    message = refusal(with_changes(tmp_path, **{key: value}))
    assert f"'{key}' is {dtype} (shape {value.shape}), not a numeric array" in message


def test_empty_hdf5_dataset_is_refused_by_name(tmp_path):
    with h5py.File(tmp_path / "codes.h5", "w") as f:
        for key, value in sample().items():
            if key != "query_image":
                f[key] = value
        f.create_dataset("query_image", data=h5py.Empty("i1"))
    assert "'query_image': an empty HDF5 dataset" in refusal(tmp_path / "codes.h5")


@pytest.mark.parametrize("changes, message", [
    ({"query_image": np.ones(10, np.int8)}, "'query_image' has shape (10,), expected a 2-d items×bits array"),
    ({"query_image": np.full((15, 20), np.nan)}, "'query_image' (shape (15, 20)) contains NaN or Inf"),
    ({"retrieval_text": np.tile(np.int8([-1, 0, 1, 1]), (90, 5))},
     "'retrieval_text' (shape (90, 20)) must hold only -1 and +1, or only 0 and 1, found [0, 0, 0]"),
    ({"query_image": np.full((15, 20), 2)}, "'query_image' (shape (15, 20)) must hold only -1 and +1, or only 0 "
                                            "and 1, found [2, 2, 2]"),
    ({"query_image": np.ones((15, 10), np.int8) * -1}, "'query_image' have 10 bits (shape (15, 10)) but "
                                                        "'retrieval_text' have 20"),
    ({"query_labels": np.ones((3, 4), np.uint8)}, "'query_image' has 15 rows (shape (15, 20)) but 'query_labels' "
                                                  "has 3 (shape (3, 4))"),
    ({"retrieval_labels": np.ones((90, 5), np.uint8)}, "'query_labels' have 4 classes but 'retrieval_labels' have 5"),
    ({"retrieval_labels": np.full((90, 4), 2)}, "'retrieval_labels' (shape (90, 4)) must be multi-hot 0/1"),
    ({"bits": np.array([[32]])}, "'bits' is int64 (1, 1) = [[32]]"),
    ({"bits": np.array(20)}, "'query_image' is int8 (15, 20), but 'bits' = 20 declares codes packed into 3 bytes"),
])
def test_errors_name_the_file_and_its_key(tmp_path, changes, message):
    text = refusal(with_changes(tmp_path, **changes))
    assert text.startswith(f"{tmp_path / 'codes.npz'}: ") and message in text, text
    assert "code_format" not in text  # a Python argument a file's author cannot give


def test_float_bits_are_read_as_bits(tmp_path):
    data = sample()
    as_bits = {k: (v > 0).astype(np.float32) if k.endswith(("image", "text")) else v for k, v in data.items()}
    np.savez(tmp_path / "codes.npz", **as_bits)
    assert score(tmp_path, tmp_path / "codes.npz") == json.loads(json.dumps(expected(data)))


def test_map_at_beyond_the_retrieval_set_is_refused(tmp_path):
    path = with_changes(tmp_path)
    assert "mAP@1000 was asked for (--map-at), but 'retrieval_text' holds 90 retrieval items" in refusal(
        path, map_at=[50, 1000])
    assert "mAP@0 was asked for" in refusal(path, map_at=[0])
    # the default Ks (a protocol's) are kept where the retrieval set allows, silently
    from cmhbench.evaluation.files import evaluate_file
    assert list(evaluate_file(path, device="cpu")["i2t"]["map_at"]) == ["50"]
    result = run_cli("evaluate", str(path), "--device", "cpu", "--map-at", "50,1000", env={"COLUMNS": "300"})
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1 and lines[0].startswith(f"error: {path}: mAP@1000"), result.stderr
