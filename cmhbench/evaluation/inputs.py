"""Validation of evaluator inputs: every bad array gets an error naming it and its shape."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from cmhbench.errors import CmhbenchError
from cmhbench.evaluation.directions import MAX_BITS
from cmhbench.evaluation.packing import pack_bits


#: far above any real label set (MS-COCO has 80, IAPR TC-12 255): a bigger index is a broken file
MAX_CLASSES = 100_000
_BLOCK_ROWS = 1 << 15
#: the four arrays one direction is scored from, as errors call them unless told otherwise
_ROLES = ("query_codes", "retrieval_codes", "query_labels", "retrieval_labels")


def to_numpy(array: Any, name: str) -> np.ndarray:
    """Any array-like (numpy, list, torch tensor on any device, with or without grad) as numpy."""
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu().numpy()
    try:
        return np.asarray(array)
    except Exception as exc:
        raise CmhbenchError(f"{name}: cannot be read as an array ({exc})") from None


def _check_numeric(array: np.ndarray, name: str, expected: str) -> None:
    """Booleans, integers and reals only: a structured, object, string or complex array is refused."""
    if array.dtype.kind not in "biuf":
        raise CmhbenchError(f"{name} is {array.dtype} (shape {array.shape}), not a numeric array; expected {expected}")


def _holds_only(block: np.ndarray, first, second) -> bool:
    """Every value is ``first`` or ``second`` (np.isin makes int64 temporaries, 12× the block)."""
    ok = block == first
    ok |= block == second
    return bool(ok.all())


def _by_blocks(array: np.ndarray, convert) -> np.ndarray:
    """``convert`` applied to blocks of rows, written into one output: checks and conversions never
    make an (items × width) temporary of the whole array, so a memory-mapped retrieval set of
    millions of items is read block by block."""
    first = convert(array[:_BLOCK_ROWS])
    if array.shape[0] <= _BLOCK_ROWS:
        return first
    out = np.empty((array.shape[0], *first.shape[1:]), dtype=first.dtype)
    out[:_BLOCK_ROWS] = first
    for start in range(_BLOCK_ROWS, array.shape[0], _BLOCK_ROWS):
        out[start:start + _BLOCK_ROWS] = convert(array[start:start + _BLOCK_ROWS])
    return out


def as_codes(array: Any, name: str, code_format: str = "pm1", packed: bool = False, hint: str | None = None) -> np.ndarray:
    """Return int8 codes in {-1, +1}, or with ``packed`` uint64 words (packing.py).
    ``code_format``: 'pm1' (values ±1) or '01' (bits 0/1). ``hint``, where given, replaces what the
    error for other values says to do (a file's reader has no ``code_format`` to declare)."""
    codes = to_numpy(array, name)
    _check_numeric(codes, name, "codes in {-1, +1} or bits in {0, 1}")
    if codes.ndim != 2:
        raise CmhbenchError(f"{name} has shape {codes.shape}, expected a 2-d items×bits array")
    if codes.shape[0] == 0 or codes.shape[1] == 0:
        raise CmhbenchError(f"{name} has shape {codes.shape}: it is empty")
    if codes.shape[1] > MAX_BITS:
        raise CmhbenchError(f"{name} has {codes.shape[1]:,} bits (shape {codes.shape}); the evaluator scores codes "
                            f"of at most {MAX_BITS:,} bits")
    if code_format not in ("pm1", "01"):
        raise CmhbenchError(f"code_format={code_format!r}: expected 'pm1' or '01'")

    def refuse(block: np.ndarray, allowed: tuple[int, int]) -> None:
        found = (block.ravel()[:1] if block.dtype == bool else block[~np.isin(block, allowed)]).ravel()[:3].tolist()
        if hint is not None:
            raise CmhbenchError(f"{name} (shape {codes.shape}) must hold only -1 and +1, or only 0 and 1, "
                                f"found {found}; {hint}")
        if code_format == "01":
            raise CmhbenchError(f"{name} (shape {codes.shape}) was declared 0/1 bits but holds other values")
        raise CmhbenchError(f"{name} (shape {codes.shape}) must hold only -1 and +1, found {found}; take the sign "
                            "of real-valued outputs, or declare 0/1 bits with code_format='01'")

    def convert(block: np.ndarray) -> np.ndarray:
        if block.dtype.kind == "f" and not np.isfinite(block).all():
            raise CmhbenchError(f"{name} (shape {codes.shape}) contains NaN or Inf")
        if code_format == "pm1" and (block.dtype == bool or not _holds_only(block, -1, 1)):
            refuse(block, (-1, 1))
        if code_format == "01" and not _holds_only(block, 0, 1):
            refuse(block, (0, 1))
        if packed:
            return pack_bits(block > 0)
        return block.astype(np.int8) if code_format == "pm1" else (block.astype(np.int8) * 2 - 1).astype(np.int8)

    return _by_blocks(codes, convert)


def as_labels(array: Any, name: str, num_classes: int | None = None, packed: bool = False) -> np.ndarray:
    """Return uint8 multi-hot labels, or with ``packed`` uint64 words. A 1-d integer array is read
    as class indices."""
    labels = to_numpy(array, name)
    _check_numeric(labels, name, "items×classes multi-hot 0/1, or 1-d integer class indices")
    if labels.ndim == 1:
        if labels.shape[0] == 0:
            raise CmhbenchError(f"{name} has shape {labels.shape}: it is empty")
        if labels.dtype.kind not in "iu" or (labels.size and labels.min() < 0):
            raise CmhbenchError(f"{name} is 1-d, so it must hold non-negative class indices")
        width = num_classes if num_classes is not None else int(labels.max()) + 1
        if width > MAX_CLASSES:
            raise CmhbenchError(f"{name} holds class index {width - 1:,}: at most {MAX_CLASSES:,} classes are "
                                "accepted (is it a class-index array?)")

        def one_hot(block: np.ndarray) -> np.ndarray:
            rows = np.zeros((block.shape[0], width), dtype=np.uint8)
            rows[np.arange(block.shape[0]), block] = 1
            return pack_bits(rows) if packed else rows

        return _by_blocks(labels, one_hot)
    if labels.ndim != 2:
        raise CmhbenchError(f"{name} has shape {labels.shape}, expected items×classes multi-hot")
    if labels.shape[0] == 0:
        raise CmhbenchError(f"{name} has shape {labels.shape}: it is empty")

    def convert(block: np.ndarray) -> np.ndarray:
        if block.dtype.kind == "f" and not np.isfinite(block).all():
            raise CmhbenchError(f"{name} (shape {labels.shape}) contains NaN or Inf")
        if not _holds_only(block, 0, 1):
            raise CmhbenchError(f"{name} (shape {labels.shape}) must be multi-hot 0/1")
        return pack_bits(block) if packed else block.astype(np.uint8)

    return _by_blocks(labels, convert)


def check_side(codes: np.ndarray, labels: np.ndarray, codes_name: str, labels_name: str) -> None:
    if codes.shape[0] != labels.shape[0]:
        raise CmhbenchError(
            f"{codes_name} has {codes.shape[0]} rows (shape {codes.shape}) but {labels_name} has "
            f"{labels.shape[0]} (shape {labels.shape}); they must describe the same items"
        )


def check_pair(query_codes: np.ndarray, retrieval_codes: np.ndarray, query_classes: int, retrieval_classes: int,
               names: Mapping[str, str] | None = None) -> None:
    name = {key: key for key in _ROLES} | dict(names or {})
    if query_codes.shape[1] != retrieval_codes.shape[1]:
        raise CmhbenchError(
            f"{name['query_codes']} have {query_codes.shape[1]} bits (shape {query_codes.shape}) but "
            f"{name['retrieval_codes']} have {retrieval_codes.shape[1]} (shape {retrieval_codes.shape})"
        )
    if query_classes != retrieval_classes:
        raise CmhbenchError(f"{name['query_labels']} have {query_classes} classes but {name['retrieval_labels']} "
                            f"have {retrieval_classes}")


def _class_count(labels: np.ndarray, num_classes: int | None) -> int:
    if labels.ndim == 2:
        return labels.shape[1]
    return num_classes if num_classes is not None else int(labels.max()) + 1


def checked_inputs(query_codes, retrieval_codes, query_labels, retrieval_labels, code_format: str = "pm1",
                   packed: bool = False, names: Mapping[str, str] | None = None):
    """Codes as {-1, +1} int8 arrays and labels as multi-hot uint8, each checked on its own and then
    against the others (rows, bits, classes); with ``packed`` both as uint64 words. ``names`` maps
    'query_codes', 'retrieval_codes', 'query_labels', 'retrieval_labels' to what errors call them
    (a file's reader names the file and its keys)."""
    name = {key: key for key in _ROLES} | dict(names or {})
    raw = {role: to_numpy(array, name[role]) for role, array in zip(
        # torch tensors (on a GPU, or requiring grad) become numpy arrays first, as codes do
        _ROLES, (query_codes, retrieval_codes, query_labels, retrieval_labels), strict=True)}
    converted = {role: as_codes(raw[role], name[role], code_format, packed) for role in ("query_codes", "retrieval_codes")}
    num_classes = None
    if all(raw[role].ndim == 1 and raw[role].dtype.kind in "iu" and raw[role].size
           for role in ("query_labels", "retrieval_labels")):  # otherwise as_labels says what is wrong
        num_classes = int(max(np.max(raw["query_labels"]), np.max(raw["retrieval_labels"]))) + 1
    for role in ("query_labels", "retrieval_labels"):
        converted[role] = as_labels(raw[role], name[role], num_classes, packed)
    check_side(raw["query_codes"], raw["query_labels"], name["query_codes"], name["query_labels"])
    check_side(raw["retrieval_codes"], raw["retrieval_labels"], name["retrieval_codes"], name["retrieval_labels"])
    check_pair(raw["query_codes"], raw["retrieval_codes"], _class_count(raw["query_labels"], num_classes),
               _class_count(raw["retrieval_labels"], num_classes), names)
    return converted["query_codes"], converted["retrieval_codes"], converted["query_labels"], converted["retrieval_labels"]
