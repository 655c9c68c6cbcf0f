"""The codes a result was scored from, kept beside it: what makes every number re-derivable.

One ``.codes.npz`` per result, in the layout `cmhbench evaluate` reads (so any copy can be scored by
hand too): ``bits``; for each modality scored, ``query_image``/``query_text`` and
``retrieval_image``/``retrieval_text`` packed with ``numpy.packbits(codes > 0, axis=1)`` (uint8,
items × ceil(bits/8), bit set where the code is +1); ``query_ids``/``retrieval_ids``, the dataset's
item indices of the split in the order of the codes (int64); ``query_labels``/``retrieval_labels``,
the multi-hot labels scored against (uint8). Labels are compressed; packed codes barely compress.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cmhbench.data.untrusted import read_npz
from cmhbench.errors import CmhbenchError
from cmhbench.evaluation.directions import MAX_BITS
from cmhbench.evaluation.packing import unpack_codes
from cmhbench.fsutil import atomic_path

SUFFIX = ".codes.npz"
SPLITS = ("query", "retrieval")
MODALITIES = ("image", "text")


@dataclass
class StoredCodes:
    """±1 codes per split and modality, the split's item ids and the labels scored against."""

    bits: int
    codes: dict[str, dict[str, np.ndarray]]  # split -> modality -> int8 items×bits in {-1, +1}
    ids: dict[str, np.ndarray]  # split -> int64 dataset item indices
    labels: dict[str, np.ndarray]  # split -> uint8 items×classes multi-hot

    def arrays(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {"bits": np.asarray(self.bits, dtype=np.int64)}
        for split in SPLITS:
            for modality, codes in self.codes[split].items():
                out[f"{split}_{modality}"] = np.packbits(np.asarray(codes) > 0, axis=1)
            out[f"{split}_ids"] = np.asarray(self.ids[split], dtype=np.int64)
            out[f"{split}_labels"] = np.asarray(self.labels[split], dtype=np.uint8)
        return out


def codes_path(result_path: Path) -> Path:
    """``32bits-seed0-0123abcd.json`` -> ``32bits-seed0-0123abcd.codes.npz`` beside it."""
    return result_path.with_name(result_path.stem + SUFFIX)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_codes(path: Path, stored: StoredCodes) -> dict[str, object]:
    """Write atomically; returns the record a result keeps of it (name, sha256, bytes)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:  # a file object: numpy would append .npz to a path
            np.savez_compressed(handle, **stored.arrays())
    return {"name": path.name, "sha256": file_sha256(path), "bytes": path.stat().st_size}


def read_codes(path: Path) -> StoredCodes:
    """Read a codes file as untrusted input: a regular file, sizes checked before reading, every
    array of the expected kind and shape, and the splits consistent with each other."""
    arrays = read_npz(path, "codes file")
    return _parse(arrays, path)


def _parse(arrays: dict[str, np.ndarray], path: Path) -> StoredCodes:
    bits = _bits(arrays, path)
    codes: dict[str, dict[str, np.ndarray]] = {}
    ids: dict[str, np.ndarray] = {}
    labels: dict[str, np.ndarray] = {}
    for split in SPLITS:
        ids[split] = _array(arrays, f"{split}_ids", path, "iu", 1)
        labels[split] = _array(arrays, f"{split}_labels", path, "biu", 2)
        if labels[split].size and (labels[split].min() < 0 or labels[split].max() > 1):
            raise CmhbenchError(f"{path}: '{split}_labels' must be multi-hot 0/1")
        labels[split] = labels[split].astype(np.uint8)
        if len(labels[split]) != len(ids[split]):
            raise CmhbenchError(f"{path}: '{split}_labels' has {len(labels[split])} rows but '{split}_ids' has "
                                f"{len(ids[split])}")
        codes[split] = {}
        for modality in MODALITIES:
            key = f"{split}_{modality}"
            if key in arrays:
                packed = _array(arrays, key, path, "u", 2)
                if packed.dtype != np.uint8 or packed.shape != (len(ids[split]), -(-bits // 8)):
                    raise CmhbenchError(f"{path}: '{key}' is {packed.dtype} {packed.shape}; expected uint8 "
                                        f"{(len(ids[split]), -(-bits // 8))} (one row per id, {bits} bits packed)")
                codes[split][modality] = unpack_codes(packed, bits)
        if not codes[split]:
            raise CmhbenchError(f"{path}: no {split} codes ('{split}_image' or '{split}_text')")
    if labels["query"].shape[1] != labels["retrieval"].shape[1]:
        raise CmhbenchError(f"{path}: query and retrieval labels have different numbers of classes")
    return StoredCodes(bits, codes, ids, labels)


def _bits(arrays: dict[str, np.ndarray], path: Path) -> int:
    value = arrays.get("bits")
    if value is None or np.ndim(value) != 0 or value.dtype.kind not in "iu" or not 0 < int(value) <= MAX_BITS:
        raise CmhbenchError(f"{path}: 'bits' must be one integer from 1 to {MAX_BITS}, the length of the codes")
    return int(value)


def _array(arrays: dict[str, np.ndarray], key: str, path: Path, kinds: str, ndim: int) -> np.ndarray:
    if key not in arrays:
        raise CmhbenchError(f"{path}: missing array '{key}' (layout: cmhbench.results.codes_file)")
    value = arrays[key]
    if value.dtype.kind not in kinds or value.ndim != ndim:
        raise CmhbenchError(f"{path}: '{key}' is {value.dtype} with {value.ndim} dimensions; expected "
                            f"{ndim}-d integers")
    return value
