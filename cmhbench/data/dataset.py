"""The in-process view of a dataset: arrays (in memory or lazily in HDF5), labels, splits, metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SPLIT_NAMES = ("query", "retrieval", "train")


@dataclass
class Dataset:
    """A multi-label image-text dataset with its protocol splits.

    ``images`` is uint8 N×H×W×3 (``image_kind == "pixels"``) or float32 N×D (``"features"``);
    ``texts`` is float32 N×T (None when the captions are the only text); both may be numpy arrays
    or h5py datasets read on demand. ``captions`` holds one string per item where the dataset has
    them (caption or tag text, read by CLIP's text tower after tokenizing), else None.
    ``labels`` is always an in-memory uint8 N×C multi-hot array. ``splits`` maps query/retrieval/train
    to int64 row indices.
    """

    name: str
    version: str
    images: Any
    texts: Any
    labels: np.ndarray
    splits: dict[str, np.ndarray]
    label_names: list[str]
    image_kind: str = "pixels"
    text_kind: str = "bow"
    source_sha256: dict[str, str] = field(default_factory=dict)
    protocol: str = ""
    path: Path | None = None
    #: digest of the canonical arrays (cmhbench.data.digest); None for generated datasets
    content_sha256: str | None = None
    captions: Any = None

    @property
    def num_items(self) -> int:
        return int(self.labels.shape[0])

    @property
    def num_labels(self) -> int:
        return int(self.labels.shape[1])

    @property
    def text_dim(self) -> int:
        return 0 if self.texts is None else int(self.texts.shape[1])

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.images.shape[1:])

    def split_sizes(self) -> dict[str, int]:
        return {name: len(self.splits[name]) for name in SPLIT_NAMES}

    def describe(self) -> dict[str, Any]:
        """Metadata recorded in every result file."""
        return {
            "name": self.name,
            "version": self.version,
            "sha256": dict(self.source_sha256),
            **({"content_sha256": self.content_sha256} if self.content_sha256 else {}),
            "split_sizes": self.split_sizes(),
            "num_items": self.num_items,
            "num_labels": self.num_labels,
            "image_kind": self.image_kind,
            "image_shape": list(self.image_shape),
            "text_kind": self.text_kind,
            "text_dim": self.text_dim,
        }
