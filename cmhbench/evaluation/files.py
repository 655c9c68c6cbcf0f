"""`cmhbench evaluate`: score codes stored in a file produced by any code base.

Accepted layout, in an ``.npz`` file or at the root of an HDF5 file (``.h5``/``.hdf5``):

* ``query_labels`` and ``retrieval_labels``: items×classes multi-hot, or 1-d class indices;
* for each modality present, ``query_image``/``retrieval_image`` and ``query_text``/
  ``retrieval_text``: items×bits codes in {-1, +1}, or {0, 1} bits, or bytes packed with
  ``numpy.packbits(codes > 0, axis=1)`` together with a scalar ``bits`` array giving the length.

Directions are scored wherever both of their sides are present (i2t needs query_image and
retrieval_text, and so on), or those asked for with ``directions``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import h5py
import numpy as np
import torch

from cmhbench.data.untrusted import check_declared_size, check_hdf5_dataset, check_hdf5_file, read_npz
from cmhbench.errors import CmhbenchError
from cmhbench.evaluation.directions import MAX_BITS
from cmhbench.evaluation.evaluator import DIRECTIONS, check_directions, evaluate
from cmhbench.evaluation.inputs import as_codes
from cmhbench.evaluation.packing import unpack_codes


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    if not path.exists():
        raise CmhbenchError(f"codes file {path} does not exist")
    if not path.is_file():
        raise CmhbenchError(f"codes file {path} is not a regular file (a folder, device or FIFO)")
    if path.suffix == ".npz":
        return read_npz(path, "codes file")
    try:
        with h5py.File(path, "r") as f:
            check_hdf5_file(f, path)
            nodes = {k: f[k] for k in f.keys() if isinstance(f.get(k, getlink=True), h5py.HardLink)}
            nodes = {k: node for k, node in nodes.items() if isinstance(node, h5py.Dataset)}
            for key, node in nodes.items():
                check_hdf5_dataset(node, f"{path}: '{key}'")
                check_declared_size(node.shape, node.dtype, f"{path}: '{key}'")
            return {k: node[()] for k, node in nodes.items()}
    except OSError as exc:
        raise CmhbenchError(f"{path} is neither .npz nor a readable HDF5 file ({exc})") from None


#: what a file's code array holding other values should become (the file has no code_format to declare)
_CODES_HINT = ("take the sign of real-valued outputs, or store numpy.packbits(codes > 0, axis=1) bytes with a "
               "scalar 'bits'")


def _codes(arrays: dict[str, np.ndarray], key: str, path: Path) -> tuple[np.ndarray, str]:
    """(codes, code_format), checked on their own, every error naming the file and ``key``: packed
    bytes are unpacked; arrays of only 0 and 1 are read as bits."""
    codes, name = arrays[key], f"{path}: '{key}'"
    if "bits" in arrays:
        bits = _bits(arrays["bits"], path)
        if codes.dtype != np.uint8 or codes.ndim != 2 or codes.shape[1] != -(-bits // 8):
            raise CmhbenchError(f"{name} is {codes.dtype} {codes.shape}, but 'bits' = {bits} declares codes packed "
                                f"into {-(-bits // 8)} bytes per item (numpy.packbits(codes > 0, axis=1)); store "
                                "uint8 items×ceil(bits/8), or drop 'bits' for unpacked codes")
        if codes.shape[0] == 0:
            raise CmhbenchError(f"{name} has shape {codes.shape}: it is empty")
        return unpack_codes(codes, bits), "pm1"
    code_format = "01" if codes.dtype.kind in "biuf" and codes.size and codes.min() >= 0 else "pm1"
    as_codes(codes, name, code_format, packed=True, hint=_CODES_HINT)  # shape, NaN and values
    return codes, code_format


def _bits(value: np.ndarray, path: Path | None = None) -> int:
    """The code length a file's scalar 'bits' array gives; ``path`` names the file in the error."""
    if np.ndim(value) != 0 or value.dtype.kind not in "iu" or not 0 < int(value) <= MAX_BITS:
        raise CmhbenchError(f"{f'{path}: ' if path is not None else ''}'bits' is {value.dtype} {np.shape(value)} = "
                            f"{str(value)[:40]}; expected one integer from 1 to {MAX_BITS}, the length of the "
                            "packed codes")
    return int(value)


def _check_map_at(map_at: list[int], num_retrieval: int, path: Path, key: str) -> None:
    """Ks asked for by name are all scored: one past the retrieval set is refused, not dropped (the
    default Ks, as a protocol's, are kept where the retrieval set allows)."""
    for k in map_at:
        if not 0 < k <= num_retrieval:
            raise CmhbenchError(f"{path}: mAP@{k} was asked for (--map-at), but '{key}' holds {num_retrieval:,} "
                                f"retrieval items; give each K from 1 to {num_retrieval:,}")


def evaluate_file(path: str | Path, directions: Iterable[str] | None = None,
                  map_at: Iterable[int] | None = None, device: torch.device | None = None) -> dict[str, Any]:
    """Score the codes in the file at ``path``; every error names the file and the key it concerns."""
    path = Path(path)
    arrays = _read_arrays(path)
    for key in ("query_labels", "retrieval_labels"):
        if key not in arrays:
            raise CmhbenchError(f"{path}: missing array '{key}' (see `cmhbench evaluate --help` for the layout)")
    available = [d for d, (src, dst) in DIRECTIONS.items()
                 if f"query_{src}" in arrays and f"retrieval_{dst}" in arrays]
    wanted = list(directions) if directions else [d for d in available if d in ("i2t", "t2i")] or available
    if not wanted:
        raise CmhbenchError(f"{path}: no direction can be scored; expected query_image/query_text and "
                            f"retrieval_image/retrieval_text code arrays, found {sorted(arrays)}")
    check_directions(wanted)
    map_at = None if map_at is None else [int(k) for k in map_at]
    results = {}
    for direction in wanted:
        src, dst = DIRECTIONS[direction]
        query_key, retrieval_key = f"query_{src}", f"retrieval_{dst}"
        for key in (query_key, retrieval_key):
            if key not in arrays:
                raise CmhbenchError(f"{path}: direction {direction} needs array '{key}', which is missing")
        query, query_format = _codes(arrays, query_key, path)
        retrieval, retrieval_format = _codes(arrays, retrieval_key, path)
        if query_format != retrieval_format:
            raise CmhbenchError(f"{path}: '{query_key}' holds {query_format} codes but "
                                f"'{retrieval_key}' holds {retrieval_format}; store both the same way")
        if map_at is not None:
            _check_map_at(map_at, len(retrieval), path, retrieval_key)
        names = {"query_codes": f"'{query_key}'", "retrieval_codes": f"'{retrieval_key}'",
                 "query_labels": "'query_labels'", "retrieval_labels": "'retrieval_labels'"}
        try:  # the labels, and rows, bits and classes across the four arrays, checked under the file's keys
            results[direction] = evaluate(query, retrieval, arrays["query_labels"], arrays["retrieval_labels"],
                                          map_at=map_at, code_format=query_format, device=device, names=names)
        except CmhbenchError as exc:
            raise CmhbenchError(f"{path}: {exc}") from None
    return results
