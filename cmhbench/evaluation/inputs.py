"""Validation of evaluator inputs: every bad array gets an error naming it and its shape."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from cmhbench.errors import CmhbenchError
from cmhbench.evaluation.directions import MAX_BITS


#: far above any real label set (MS-COCO has 80, IAPR TC-12 255): a bigger index is a broken file
MAX_CLASSES = 100_000


def to_numpy(array: Any, name: str) -> np.ndarray:
    """Any array-like (numpy, list, torch tensor on any device, with or without grad) as numpy."""
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu().numpy()
    try:
        return np.asarray(array)
    except Exception as exc:
        raise CmhbenchError(f"{name}: cannot be read as an array ({exc})") from None


def as_codes(array: Any, name: str, code_format: str = "pm1") -> np.ndarray:
    """Return int8 codes in {-1, +1}. ``code_format``: 'pm1' (values ±1) or '01' (bits 0/1)."""
    codes = to_numpy(array, name)
    if codes.ndim != 2:
        raise CmhbenchError(f"{name} has shape {codes.shape}, expected a 2-d items×bits array")
    if codes.shape[0] == 0 or codes.shape[1] == 0:
        raise CmhbenchError(f"{name} has shape {codes.shape}: it is empty")
    if codes.shape[1] > MAX_BITS:
        raise CmhbenchError(f"{name} has {codes.shape[1]:,} bits (shape {codes.shape}); the evaluator scores codes "
                            f"of at most {MAX_BITS:,} bits")
    if codes.dtype.kind == "f" and not np.isfinite(codes).all():
        raise CmhbenchError(f"{name} (shape {codes.shape}) contains NaN or Inf")
    if code_format == "pm1":
        if codes.dtype == bool or not np.isin(codes, (-1, 1)).all():
            bad = codes[~np.isin(codes, (-1, 1))] if codes.dtype != bool else codes.ravel()[:1]
            raise CmhbenchError(
                f"{name} (shape {codes.shape}) must hold only -1 and +1, found {bad.ravel()[:3].tolist()}; "
                "take the sign of real-valued outputs, or declare 0/1 bits with code_format='01'"
            )
        return codes.astype(np.int8)
    if code_format == "01":
        if not np.isin(codes, (0, 1)).all():
            raise CmhbenchError(f"{name} (shape {codes.shape}) was declared 0/1 bits but holds other values")
        return (codes.astype(np.int8) * 2 - 1).astype(np.int8)
    raise CmhbenchError(f"code_format={code_format!r}: expected 'pm1' or '01'")


def as_labels(array: Any, name: str, num_classes: int | None = None) -> np.ndarray:
    """Return uint8 multi-hot labels. A 1-d integer array is read as class indices."""
    labels = to_numpy(array, name)
    if labels.ndim == 1:
        if labels.dtype.kind not in "iu" or (labels.size and labels.min() < 0):
            raise CmhbenchError(f"{name} is 1-d, so it must hold non-negative class indices")
        width = num_classes if num_classes is not None else int(labels.max()) + 1
        if width > MAX_CLASSES:
            raise CmhbenchError(f"{name} holds class index {width - 1:,}: at most {MAX_CLASSES:,} classes are "
                                "accepted (is it a class-index array?)")
        onehot = np.zeros((labels.shape[0], width), dtype=np.uint8)
        onehot[np.arange(labels.shape[0]), labels] = 1
        return onehot
    if labels.ndim != 2:
        raise CmhbenchError(f"{name} has shape {labels.shape}, expected items×classes multi-hot")
    if labels.shape[0] == 0:
        raise CmhbenchError(f"{name} has shape {labels.shape}: it is empty")
    if labels.dtype.kind == "f" and not np.isfinite(labels).all():
        raise CmhbenchError(f"{name} (shape {labels.shape}) contains NaN or Inf")
    if not np.isin(labels, (0, 1)).all():
        raise CmhbenchError(f"{name} (shape {labels.shape}) must be multi-hot 0/1")
    return labels.astype(np.uint8)


def check_side(codes: np.ndarray, labels: np.ndarray, codes_name: str, labels_name: str) -> None:
    if codes.shape[0] != labels.shape[0]:
        raise CmhbenchError(
            f"{codes_name} has {codes.shape[0]} rows (shape {codes.shape}) but {labels_name} has "
            f"{labels.shape[0]} (shape {labels.shape}); they must describe the same items"
        )


def check_pair(query_codes: np.ndarray, retrieval_codes: np.ndarray,
               query_labels: np.ndarray, retrieval_labels: np.ndarray) -> None:
    if query_codes.shape[1] != retrieval_codes.shape[1]:
        raise CmhbenchError(
            f"query_codes have {query_codes.shape[1]} bits (shape {query_codes.shape}) but "
            f"retrieval_codes have {retrieval_codes.shape[1]} (shape {retrieval_codes.shape})"
        )
    if query_labels.shape[1] != retrieval_labels.shape[1]:
        raise CmhbenchError(
            f"query_labels have {query_labels.shape[1]} classes but retrieval_labels have "
            f"{retrieval_labels.shape[1]}"
        )


def checked_inputs(query_codes, retrieval_codes, query_labels, retrieval_labels, code_format: str = "pm1"):
    """Codes as {-1, +1} (or packed) arrays and labels as multi-hot uint8, each checked against the other."""
    query_codes = as_codes(query_codes, "query_codes", code_format)
    retrieval_codes = as_codes(retrieval_codes, "retrieval_codes", code_format)
    # torch tensors (on a GPU, or requiring grad) become numpy arrays first, as codes do
    query_labels = to_numpy(query_labels, "query_labels")
    retrieval_labels = to_numpy(retrieval_labels, "retrieval_labels")
    num_classes = None
    if query_labels.ndim == 1 and retrieval_labels.ndim == 1:
        num_classes = int(max(np.max(query_labels), np.max(retrieval_labels))) + 1
    query_labels = as_labels(query_labels, "query_labels", num_classes)
    retrieval_labels = as_labels(retrieval_labels, "retrieval_labels", num_classes)
    check_side(query_codes, query_labels, "query_codes", "query_labels")
    check_side(retrieval_codes, retrieval_labels, "retrieval_codes", "retrieval_labels")
    check_pair(query_codes, retrieval_codes, query_labels, retrieval_labels)
    return query_codes, retrieval_codes, query_labels, retrieval_labels
