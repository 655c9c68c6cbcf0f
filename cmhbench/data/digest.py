"""The content digest of a canonical dataset file: what makes two prepared files the same data.

The sha256 of the source files says where a file came from; it says nothing about the file itself
once written (labels zeroed or rows shuffled afterwards keep the source digests). So `prepare`
records a digest of every canonical array (labels, each split, texts, images, each with its dtype
and shape) in the file, every load recomputes it, and the dataset's identity in a run includes it.
Arrays are hashed in blocks of rows, so image sets larger than memory are hashed in bounded memory.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from cmhbench.data.dataset import SPLIT_NAMES

ATTRIBUTE = "content_sha256"
_BLOCK_BYTES = 64 * 1024**2
# (path, inode, size, mtime) -> digest: a file is hashed once per process however often it is opened (a
# sweep plans every job against the same file)
_verified: dict[tuple[str, int, int, int], str] = {}


def array_digest(array: Any) -> str:
    """sha256 of an array's dtype, shape and C-order bytes, read in blocks of rows."""
    h = hashlib.sha256(f"{np.dtype(array.dtype).str}{tuple(array.shape)}".encode())
    row_bytes = max(1, int(np.prod(array.shape[1:], dtype=np.int64)) * np.dtype(array.dtype).itemsize)
    step = max(1, _BLOCK_BYTES // row_bytes)
    for start in range(0, array.shape[0], step):
        h.update(np.ascontiguousarray(array[start:start + step]).tobytes())
    return h.hexdigest()


def captions_digest(captions: Any) -> str:
    """sha256 of a sequence of strings: each one's UTF-8 bytes with their length, in order."""
    h = hashlib.sha256(f"captions{len(captions)}".encode())
    for caption in captions:
        data = (caption.decode() if isinstance(caption, bytes) else str(caption)).encode()
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def content_digest(handle: Any) -> str:
    """The digest of an open canonical file (h5py File or any mapping of its arrays). Files without
    captions hash exactly as they did before captions existed."""
    parts = {"labels": array_digest(handle["labels"]), "images": array_digest(handle["images"])}
    if "texts" in handle:
        parts["texts"] = array_digest(handle["texts"])
    if "captions" in handle:
        node = handle["captions"]
        parts["captions"] = captions_digest(node.asstr()[()] if hasattr(node, "asstr") else node)
    for split in SPLIT_NAMES:
        parts[f"splits/{split}"] = array_digest(handle[f"splits/{split}"])
    return hashlib.sha256("".join(f"{k}={v}\n" for k, v in sorted(parts.items())).encode()).hexdigest()


def verified_digest(handle: Any, path: Path) -> str:
    """The digest recomputed from the file, once per process per unchanged file."""
    stat = os.stat(path)
    key = (str(Path(path).resolve()), stat.st_ino, stat.st_size, stat.st_mtime_ns)
    if key not in _verified:
        _verified[key] = content_digest(handle)
    return _verified[key]
