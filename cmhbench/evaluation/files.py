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


def _codes(arrays: dict[str, np.ndarray], key: str) -> tuple[np.ndarray, str]:
    """(codes, code_format): packed bytes are unpacked; arrays of only 0 and 1 are read as bits."""
    codes = arrays[key]
    if "bits" in arrays:
        bits = _bits(arrays["bits"])
        if codes.dtype != np.uint8 or codes.ndim != 2 or codes.shape[1] != -(-bits // 8):
            raise CmhbenchError(f"'{key}' is {codes.dtype} {codes.shape}, but 'bits' = {bits} declares codes packed "
                                f"into {-(-bits // 8)} bytes per item (numpy.packbits(codes > 0, axis=1)); store "
                                "uint8 items×ceil(bits/8), or drop 'bits' for unpacked codes")
        return unpack_codes(codes, bits), "pm1"
    if codes.dtype.kind in "biu" and codes.size and codes.min() >= 0:
        return codes, "01"
    return codes, "pm1"


def _bits(value: np.ndarray) -> int:
    if np.ndim(value) != 0 or value.dtype.kind not in "iu" or not 0 < int(value) <= MAX_BITS:
        raise CmhbenchError(f"'bits' is {value.dtype} {np.shape(value)} = {str(value)[:40]}; expected one integer "
                            f"from 1 to {MAX_BITS}, the length of the packed codes")
    return int(value)


def evaluate_file(path: str | Path, directions: Iterable[str] | None = None,
                  map_at: Iterable[int] | None = None, device: torch.device | None = None) -> dict[str, Any]:
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
    results = {}
    for direction in wanted:
        src, dst = DIRECTIONS[direction]
        for key in (f"query_{src}", f"retrieval_{dst}"):
            if key not in arrays:
                raise CmhbenchError(f"{path}: direction {direction} needs array '{key}', which is missing")
        query, query_format = _codes(arrays, f"query_{src}")
        retrieval, retrieval_format = _codes(arrays, f"retrieval_{dst}")
        if query_format != retrieval_format:
            raise CmhbenchError(f"{path}: '{f'query_{src}'}' holds {query_format} codes but "
                                f"'{f'retrieval_{dst}'}' holds {retrieval_format}; store both the same way")
        results[direction] = evaluate(query, retrieval, arrays["query_labels"], arrays["retrieval_labels"],
                                      map_at=map_at, code_format=query_format, device=device)
    return results
