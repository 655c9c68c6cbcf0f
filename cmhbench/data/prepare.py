"""Preparing a standard dataset from the files a researcher has, and finding it again.

``prepare`` reads the source files (any layout `cmhbench.data.layouts` knows, or a dataset's own
reader), drops items without any label (the count is reported), applies the protocol's fixed split
(shipped with the dataset plugin; or the files' own split for layouts that carry one), and writes the
canonical HDF5 file atomically into the cache with every source file's sha256. ``verify`` checks the
prepared file and, where they are still there, the source files against those digests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import h5py
import numpy as np

from cmhbench.data.dataset import Dataset
from cmhbench.data.format import IN_MEMORY_BYTES, load_canonical, write_canonical
from cmhbench.data.layouts import Items, check_orientation, load_items, to_pixels
from cmhbench.data.readers import sha256_file
from cmhbench.errors import CmhbenchError
from cmhbench.fsutil import cache_home
from cmhbench.progress import TrainingProgress

_LARGE_IMAGE_BYTES = 2 * IN_MEMORY_BYTES  # above this, images are stored compressed (lzf: cheap to read)


@dataclass(frozen=True)
class DatasetProfile:
    """What a standard dataset looks like in its circulated files, and its protocol's split sizes."""

    name: str
    title: str
    counts: tuple[int, ...]          # accepted item counts of the standard files
    num_labels: int
    query: int
    train: int
    label_names: tuple[str, ...] = ()
    version: str = "1"
    where_to_get: str = ""
    accepts: str = ""
    fixed_split: Callable[[int], dict[str, np.ndarray]] | None = None  # item count -> query/train
    reader: Callable[..., Items] | None = None  # a dataset-specific reader instead of load_items


@dataclass
class PrepareReport:
    path: Path
    layout: str
    items: int
    dropped_unlabeled: int
    split_sizes: dict[str, int]
    split_source: str
    notes: list[str] = field(default_factory=list)


def prepared_path(name: str) -> Path:
    return cache_home() / "prepared" / f"{name}.h5"


def open_prepared(name: str) -> Dataset:
    """The prepared dataset, or an error with the exact command that prepares it."""
    path = prepared_path(name)
    if not path.exists():
        raise CmhbenchError(
            f"dataset {name} is not prepared (looked for {path}); prepare it from your files with: "
            f"cmhbench data prepare {name} --source PATH [--source PATH ...]  (see `cmhbench data info {name}`)")
    return load_canonical(path)


class _KeptPixels:
    """Block source over the kept items (ascending source rows) of an image ItemArray."""

    def __init__(self, items: Items, keep: np.ndarray, pixels: bool):
        self.items, self.keep, self.pixels = items, keep, pixels
        first = items.images.read(0, 1)
        first = to_pixels(first, items.images.describe()) if pixels else first.reshape(1, -1)
        self.shape = (len(keep), *first.shape[1:])
        self.dtype = np.uint8 if pixels else np.float32

    def read(self, start: int, stop: int) -> np.ndarray:
        rows = self.keep[start:stop]
        block = self.items.images.read(int(rows[0]), int(rows[-1]) + 1)[rows - rows[0]]
        if self.pixels:
            return to_pixels(block, self.items.images.describe())
        block = np.asarray(block, dtype=np.float32).reshape(len(rows), -1)
        if not np.isfinite(block).all():
            raise CmhbenchError(f"{self.items.images.describe()}: image features contain NaN or Inf")
        return block


def prepare(profile: DatasetProfile, sources: Sequence[str | Path], *, orientation: str = "auto",
            label_names: Sequence[str] | None = None, progress: TrainingProgress | None = None) -> PrepareReport:
    """Convert ``sources`` into the canonical file for ``profile`` (see the module docstring);
    ``progress`` shows its phases (quiet by default)."""
    if not sources:
        raise CmhbenchError(f"cmhbench data prepare {profile.name}: give the source files with --source PATH")
    check_orientation(orientation)  # before any reader, since some readers never look at it
    progress = progress or TrainingProgress(mode="quiet")
    with progress.phase("reading the source files"):
        if profile.reader is not None:
            items = profile.reader(sources, orientation=orientation)
        else:
            items = load_items(sources, counts=profile.counts, num_labels=profile.num_labels, orientation=orientation)
    n = len(items.labels)
    keep = np.flatnonzero(items.labels.sum(1) > 0)  # items without any label are dropped
    if len(keep) == 0:
        raise CmhbenchError(f"{_labels_source(items)}: no item has a label (all {n} rows are zero); expected "
                            "multi-hot rows with at least one 1, or class indices")
    splits, split_source = _labelled_splits(profile, items, keep)

    if len(items.images.item_shape) not in (1, 3):
        raise CmhbenchError(f"{items.images.describe()}: images must be 4-d (items, height, width, 3 channels) "
                            f"or 2-d features (items, width); got {len(items.images.item_shape) + 1}-d")
    pixels = len(items.images.item_shape) == 3
    images = _KeptPixels(items, keep, pixels)
    if not pixels and images.shape[1] == 0:
        raise CmhbenchError(f"{items.images.describe()}: empty image features")
    if items.texts is not None and (items.texts.ndim != 2 or items.texts.shape[1] == 0):
        raise CmhbenchError(f"{items.sources.get('texts', 'the texts')} {items.texts.shape}: empty text features; "
                            "expected items×width with width ≥ 1")
    texts, captions = (None if items.texts is None else items.texts[keep]), _kept(items.captions, keep)
    text_width = 0 if texts is None else texts.shape[1]
    with progress.phase("source file digests"):
        digests = {str(f.name): sha256_file(f) for f in items.files}
    size = int(np.prod(images.shape)) * (1 if pixels else 4)
    path = prepared_path(profile.name)
    names = list(label_names or profile.label_names or [f"label{i}" for i in range(profile.num_labels)])
    with progress.phase(f"writing {path.name} (images in blocks, then the content digest)", total=len(keep)) as advance:
        write_canonical(
            path, images=images, texts=texts, captions=captions, labels=items.labels[keep], splits=splits,
            on_items=advance, name=profile.name, version=f"{profile.version}:{items.layout}:{n}x{text_width}",
            label_names=names, source_sha256=digests, image_kind="pixels" if pixels else "features",
            text_kind=_text_kind(texts), protocol=profile.name,
            compression="lzf" if pixels and size > _LARGE_IMAGE_BYTES else None,
            extra_attrs={"source_paths": json.dumps({f.name: str(f.resolve()) for f in items.files}),
                         "layout": items.layout, "dropped_unlabeled": int(n - len(keep)),
                         "split_source": split_source},
        )
    return PrepareReport(path=path, layout=items.layout, items=len(keep), dropped_unlabeled=int(n - len(keep)),
                         split_sizes={k: len(v) for k, v in splits.items()}, split_source=split_source,
                         notes=list(items.notes))


def _labelled_splits(profile: DatasetProfile, items: Items, keep: np.ndarray) -> tuple[dict[str, np.ndarray], str]:
    """The splits over the kept (labelled) items, renumbered, and where they came from; a split left
    empty by the dropped items is refused."""
    n = len(items.labels)
    remap = np.full(n, -1, dtype=np.int64)
    remap[keep] = np.arange(len(keep))
    if items.splits is not None:
        source_splits, split_source = items.splits, f"from the source files ({items.layout} layout)"
    else:
        if profile.fixed_split is None:
            raise CmhbenchError(f"dataset {profile.name} has no fixed split for files in the {items.layout} layout")
        source_splits = profile.fixed_split(n)
        query = np.asarray(source_splits["query"])
        rest = np.setdiff1d(np.arange(n), query)
        source_splits = {"query": query, "retrieval": rest, "train": np.asarray(source_splits["train"])}
        split_source = f"fixed protocol split shipped with cmhbench ({profile.name}, {n} items)"
    splits = {}
    for split, rows in source_splits.items():
        rows = remap[np.asarray(rows, dtype=np.int64)]
        splits[split] = np.sort(rows[rows >= 0])
        if len(splits[split]) == 0:  # every item of the split dropped: the prepared file would be unusable
            raise CmhbenchError(f"{_labels_source(items, split)}: no item of the {split} split has a label "
                                f"(its {len(rows)} rows are all zero); items without labels are dropped, which "
                                "would leave the split empty")
    return splits, split_source


def _labels_source(items: Items, split: str | None = None) -> str:
    """The labels' file and key, for a split where the reader knows it, else the source files."""
    return (items.sources.get(f"labels:{split}") or items.sources.get("labels")
            or "labels of " + ", ".join(map(str, items.files)))


def _kept(captions: list[str] | None, keep: np.ndarray) -> list[str] | None:
    return None if captions is None else [captions[i] for i in keep]


def _text_kind(texts: np.ndarray | None) -> str:
    if texts is None:
        return "captions"
    return "bow" if _looks_like_bow(texts) else "features"


def _looks_like_bow(texts: np.ndarray) -> bool:
    sample = texts[: min(len(texts), 2000)]
    return bool(np.all(sample >= 0) and np.all(sample == np.round(sample)))


@dataclass
class VerifyReport:
    path: Path
    ok: bool
    lines: list[str]


def verify(name: str, sources: Sequence[str | Path] = ()) -> VerifyReport:
    """Validate the prepared file and compare source files (given, or recorded) with their digests."""
    dataset = open_prepared(name)
    with h5py.File(dataset.path, "r") as f:
        recorded_paths = json.loads(f.attrs.get("source_paths", "{}"))
    lines = [f"{dataset.path}: canonical file valid ({dataset.num_items} items, splits {dataset.split_sizes()})",
             f"{dataset.path}: content digest matches ({dataset.content_sha256[:16]}...: labels, splits, texts, images)"]
    ok = True
    candidates = {Path(s).name: Path(s) for s in sources} or {k: Path(v) for k, v in recorded_paths.items()}
    for filename, digest in dataset.source_sha256.items():
        path = candidates.get(filename)
        if path is None or not path.exists():
            lines.append(f"{filename}: source not found{f' at {path}' if path else ''} (digest not checked)")
            continue
        actual = sha256_file(path)
        if actual == digest:
            lines.append(f"{path}: sha256 matches")
        else:
            ok = False
            lines.append(f"{path}: CHECKSUM MISMATCH: prepared from {digest[:16]}..., file now {actual[:16]}...")
    return VerifyReport(dataset.path, ok, lines)
