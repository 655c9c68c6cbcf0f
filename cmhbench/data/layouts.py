"""Recognising the widely circulated layouts of cross-modal dataset files.

* **arrays** (the DCMH release and its many copies): images under ``images``/``IAll`` (or features
  under ``X``/``I_all``...), texts under ``YAll``/``tags``..., labels under ``LAll``/``labels``...,
  in one file or spread over several (a key present in several files is concatenated in file-name
  order, as the multi-part ``IAll`` releases are);
* **split** (DAPH's code): already-split HDF5 arrays ``train_data``/``train_y``/``train_L``,
  ``test_*`` and ``data_set``/``dataset_y``/``dataset_L``; the file's own split is kept, the
  training items are located in the database by content;
* **split files** (UCMFH's CLIP features and the repositories that reuse them): one file per split,
  ``query``, ``retrieval`` (or ``database``) and ``train`` (any container above, or a pickle of a
  dict of numpy arrays), each with images or features, texts and labels under the usual keys
  (UCMFH: ``image``, ``text``, ``label``); kept as the DAPH split is.

Orientation comes from the known item counts: the item axis of every array is the one whose length
is an accepted count, never a guess. When two axes qualify, the user states ``orientation``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from cmhbench.data.readers import SourceArray, read_source
from cmhbench.errors import CmhbenchError

IMAGE_KEYS = ("images", "IAll", "I_all", "image", "imgs", "X", "I", "image_features", "img_feats")
TEXT_KEYS = ("YAll", "Y_all", "tags", "texts", "text", "Y", "T", "T_all", "BoW", "bow", "txt_feats")
LABEL_KEYS = ("LAll", "L_all", "labels", "label", "L", "gnd", "cats")
SPLIT_KEYS = {"query": ("test_data", "test_y", "test_L"),
              "retrieval": ("data_set", "dataset_y", "dataset_L"),
              "train": ("train_data", "train_y", "train_L")}
ORIENTATIONS = ("auto", "items-first", "items-last")
#: the file names (without suffix) of the split-files layout, by split
SPLIT_FILE_NAMES = {"query": ("query", "test"), "retrieval": ("retrieval", "database", "db"), "train": ("train",)}
SOURCE_SUFFIXES = (".mat", ".h5", ".hdf5", ".npz", ".npy", ".pkl", ".pickle")


@dataclass
class ItemArray:
    """Several source arrays concatenated along their item axes, read item-first in blocks."""

    parts: list[tuple[SourceArray, int]]  # (array, item axis)
    role: str

    @property
    def num_items(self) -> int:
        return sum(a.shape[axis] for a, axis in self.parts)

    @property
    def item_shape(self) -> tuple[int, ...]:
        array, axis = self.parts[0]
        return tuple(s for i, s in enumerate(array.shape) if i != axis)

    def read(self, start: int, stop: int) -> np.ndarray:
        blocks, offset = [], 0
        for array, axis in self.parts:
            n = array.shape[axis]
            lo, hi = max(start - offset, 0), min(stop - offset, n)
            if lo < hi:
                blocks.append(array.read_items(axis, lo, hi))
            offset += n
        return np.concatenate(blocks) if len(blocks) > 1 else blocks[0]

    def read_all(self) -> np.ndarray:
        return self.read(0, self.num_items)

    def describe(self) -> str:
        return " + ".join(f"{a} {a.shape}" for a, _ in self.parts)


@dataclass
class Items:
    """A dataset's items in the order of its standard files."""

    images: ItemArray
    texts: np.ndarray | None  # None where captions are the only text
    labels: np.ndarray
    layout: str
    files: list[Path]
    splits: dict[str, np.ndarray] | None = None  # when the files carry their own split
    notes: list[str] = field(default_factory=list)
    captions: list[str] | None = None  # one caption (or tag string) per item
    #: where the texts and labels came from ("file: 'key'"), for errors found after reading
    sources: dict[str, str] = field(default_factory=dict)


def check_orientation(orientation: str) -> None:
    """Every reader takes --orientation, and some ignore it: an unknown value is refused for all."""
    if orientation not in ORIENTATIONS:
        raise CmhbenchError(f"--orientation {orientation!r}: expected one of {', '.join(ORIENTATIONS)}")


def _refuse_non_numeric(dtype: np.dtype, where: str, role: str) -> None:
    """Bool, integer or float only: strings, even of digits, and complex numbers would otherwise be
    parsed or cut to their real part, and MATLAB cells and structs would fail far from their file."""
    dtype = np.dtype(dtype)
    if dtype.kind in "biuf":
        return
    if dtype.kind in "US":
        found = f"strings ({dtype})"
    elif dtype.kind == "c":
        found = f"complex numbers ({dtype})"
    elif dtype.kind == "O":
        found = "a MATLAB cell array or objects (dtype object)"
    elif dtype.names:
        found = f"a MATLAB struct or record (fields {', '.join(dtype.names)})"
    else:
        found = f"dtype {dtype}"
    raise CmhbenchError(f"{where} holds {found}; expected a numeric (bool, integer or float) array of {role}")


def check_numeric(array: SourceArray, role: str) -> SourceArray:
    """``array`` when it holds bool, integer or float numbers, before anything of it is read."""
    _refuse_non_numeric(array.dtype, source_name(array), role)
    return array


def source_name(array: SourceArray) -> str:
    return f"{array.file}: '{array.key}'"


def item_axis(array: SourceArray, counts: Iterable[int], orientation: str) -> int:
    """The axis of ``array`` that indexes items, from the accepted item counts."""
    counts = set(counts)
    if orientation == "items-first":
        axis = 0
    elif orientation == "items-last":
        axis = len(array.shape) - 1
    else:
        candidates = [i for i, s in enumerate(array.shape) if s in counts]
        if not candidates:
            raise CmhbenchError(
                f"{array.file}: '{array.key}' has shape {array.shape}, but this dataset has "
                f"{' or '.join(map(str, sorted(counts)))} items; no axis matches (wrong file or key?)")
        if len(candidates) > 1:
            raise CmhbenchError(
                f"{array.file}: '{array.key}' has shape {array.shape}: more than one axis could "
                "index items; state it with --orientation items-first or items-last")
        axis = candidates[0]
    if array.shape[axis] not in counts and orientation != "auto":
        raise CmhbenchError(
            f"{array.file}: '{array.key}' has {array.shape[axis]} items along the stated orientation "
            f"({orientation}), expected {' or '.join(map(str, sorted(counts)))}")
    return axis


_FLOAT_PIXEL_CHUNK_BYTES = 64 * 2**20


def to_pixels(block: np.ndarray, where: str) -> np.ndarray:
    """Item-first image block -> uint8 N×H×W×3 (from N×H×W×3 or N×3×H×W)."""
    _refuse_non_numeric(block.dtype, where, "pixels")
    if block.ndim != 4:
        raise CmhbenchError(f"{where}: images must be 4-d (items, height, width, 3 channels), got {block.shape}")
    if block.shape[3] != 3 and block.shape[1] == 3:
        block = block.transpose(0, 2, 3, 1)
    if block.shape[3] != 3:
        raise CmhbenchError(f"{where}: images have shape {block.shape}; expected 3 colour channels")
    if block.dtype == np.uint8:
        return np.ascontiguousarray(block)
    if block.size and (block.min() < 0 or block.max() > 255):
        raise CmhbenchError(f"{where}: pixel values outside 0..255 (min {block.min()}, max {block.max()})")
    if block.dtype.kind != "f":
        return block.astype(np.uint8)
    if block.size and block.max() <= 1 and np.any(block % 1):  # [0, 1] images: a cast would make them black
        raise CmhbenchError(f"{where}: pixel values must be 0..255, found floats from {block.min()} to "
                            f"{block.max()} ({block.dtype}); images stored as [0, 1] floats must be multiplied by 255 first")
    pixels = np.empty(block.shape, dtype=np.uint8)
    rows = max(1, _FLOAT_PIXEL_CHUNK_BYTES // max(1, block[:1].nbytes))
    for start in range(0, len(block), rows):  # rounded in chunks: a float copy of the whole block is GBs
        np.rint(block[start:start + rows], out=pixels[start:start + rows], casting="unsafe")
    return pixels


def to_labels(values: np.ndarray, num_labels: int, where: str) -> np.ndarray:
    """Multi-hot N×C, or class indices (1-based as MATLAB writes them, or 0-based) -> uint8 N×C."""
    values = np.asarray(values)
    _refuse_non_numeric(values.dtype, where, "labels")
    if values.size == 0:
        raise CmhbenchError(f"{where}: no labels (shape {values.shape}); expected items×{num_labels} multi-hot "
                            "or one class index per item")
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim == 1:
        if not np.issubdtype(values.dtype, np.number) or not np.all(values == np.round(values)):
            raise CmhbenchError(f"{where}: 1-d labels must be integer class indices")
        values = values.astype(np.int64)
        base = 1 if values.min() >= 1 and values.max() == num_labels else 0
        if values.min() - base < 0 or values.max() - base >= num_labels:
            raise CmhbenchError(f"{where}: class indices range {values.min()}..{values.max()}, expected "
                                f"0..{num_labels - 1} or 1..{num_labels}")
        onehot = np.zeros((len(values), num_labels), dtype=np.uint8)
        onehot[np.arange(len(values)), values - base] = 1
        return onehot
    if values.ndim != 2 or values.shape[1] != num_labels:
        raise CmhbenchError(f"{where}: labels have shape {values.shape}, expected items×{num_labels} multi-hot")
    if not np.isin(values, (0, 1)).all():
        raise CmhbenchError(f"{where}: labels must be 0/1 multi-hot")
    return values.astype(np.uint8)


def to_matrix(values: np.ndarray, where: str) -> np.ndarray:
    _refuse_non_numeric(np.asarray(values).dtype, where, "features")
    values = np.asarray(values, dtype=np.float32)
    if values.ndim != 2:
        raise CmhbenchError(f"{where}: expected a 2-d items×width matrix, got shape {values.shape}")
    if not np.isfinite(values).all():
        row = int(np.argwhere(~np.isfinite(values))[0][0])
        raise CmhbenchError(f"{where}: contains NaN or Inf (first at item {row})")
    return values


def _gather(arrays_by_file: list[dict[str, SourceArray]], aliases: Sequence[str]) -> list[SourceArray]:
    for alias in aliases:
        found = [arrays[alias] for arrays in arrays_by_file if alias in arrays]
        if found:
            return found
    return []


def _expand(sources: Sequence[str | Path]) -> list[Path]:
    files: list[Path] = []
    for source in sources:
        path = Path(source).expanduser()
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix.lower() in SOURCE_SUFFIXES))
        elif path.exists():
            files.append(path)
        else:
            raise CmhbenchError(f"source {path} does not exist")
    if not files:
        raise CmhbenchError(f"no {', '.join(SOURCE_SUFFIXES)} files in {', '.join(map(str, sources))}")
    return files


def load_items(sources: Sequence[str | Path], *, counts: Iterable[int], num_labels: int,
               orientation: str = "auto") -> Items:
    """Read the files of one dataset in any supported layout (see the module docstring)."""
    check_orientation(orientation)
    files = _expand(sources)
    arrays_by_file = [read_source(f) for f in files]
    every_key = set().union(*arrays_by_file)
    if all(k in every_key for keys in SPLIT_KEYS.values() for k in keys):
        return _load_split_layout(arrays_by_file, files, num_labels)
    by_split = _split_files(files)
    if by_split is not None:
        return _load_split_files(by_split, dict(zip(files, arrays_by_file, strict=True)), num_labels)

    found = {role: _gather(arrays_by_file, aliases)
             for role, aliases in (("images", IMAGE_KEYS), ("texts", TEXT_KEYS), ("labels", LABEL_KEYS))}
    missing = [role for role, arrays in found.items() if not arrays]
    if missing:
        expected = {"images": IMAGE_KEYS, "texts": TEXT_KEYS, "labels": LABEL_KEYS}
        detail = "; ".join(f"{role}: one of {', '.join(expected[role])}" for role in missing)
        raise CmhbenchError(f"{', '.join(map(str, files))}: missing {', '.join(missing)} ({detail}); "
                            f"found keys {', '.join(sorted(every_key))}")
    for role, arrays in found.items():
        for array in arrays:
            check_numeric(array, role)
    counts = set(counts)
    # the images may be split over several files: their item counts add up to the dataset's
    image_parts = found["images"]
    if len(image_parts) > 1:
        total_candidates = _multi_part_axes(image_parts, counts, orientation)
        images = ItemArray(total_candidates, "images")
    else:
        images = ItemArray([(image_parts[0], item_axis(image_parts[0], counts, orientation))], "images")
    n = images.num_items
    texts_arr = found["texts"][0]
    labels_arr = found["labels"][0]
    texts = to_matrix(np.moveaxis(texts_arr.read(), item_axis(texts_arr, {n}, orientation), 0), str(texts_arr))
    label_values = labels_arr.read()
    if label_values.ndim == 2 and 1 not in label_values.shape:
        label_values = np.moveaxis(label_values, item_axis(labels_arr, {n}, orientation), 0)
    if label_values.ndim == 2 and label_values.size % n:  # an N×1 or 1×N column reshapes; anything else is named
        raise CmhbenchError(f"{source_name(labels_arr)} has shape {label_values.shape}; expected {n} items "
                            f"(items×{num_labels} multi-hot or one class index per item)")
    labels = to_labels(label_values.reshape(n, -1) if label_values.ndim == 2 else label_values, num_labels, str(labels_arr))
    for role, count in (("texts", len(texts)), ("labels", len(labels))):
        if count != n:
            raise CmhbenchError(f"{role} have {count} items but images have {n}: mismatched item counts")
    return Items(images=images, texts=texts, labels=labels, layout="arrays", files=files,
                 sources={"texts": source_name(texts_arr), "labels": source_name(labels_arr)})


def _multi_part_axes(parts: list[SourceArray], counts: set[int], orientation: str) -> list[tuple[SourceArray, int]]:
    """Item axes of an image array split over several files: the axis (same position in every
    part) along which the parts' lengths add up to an accepted count."""
    ndim = len(parts[0].shape)
    axes = range(ndim) if orientation == "auto" else ([0] if orientation == "items-first" else [ndim - 1])
    for axis in axes:
        if sum(p.shape[axis] for p in parts) in counts:
            return [(p, axis) for p in parts]
    raise CmhbenchError(f"images in {len(parts)} files ({', '.join(f'{p} {p.shape}' for p in parts)}) do not add "
                        f"up to {' or '.join(map(str, sorted(counts)))} items along any axis")


def _row_digest(image: np.ndarray, text: np.ndarray, label: np.ndarray) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    for part in (image, text, label):
        h.update(np.ascontiguousarray(part).tobytes())
    return h.digest()


def _split_part(images: SourceArray, texts: SourceArray, labels: SourceArray, split: str, num_labels: int):
    """One split's (images, texts, labels), items first, with matching item counts."""
    for array, role in ((images, "images"), (texts, "texts"), (labels, "labels")):
        check_numeric(array, role)
    if len(images.shape) < 2:  # items first, then features or pixels: a scalar or a vector is neither
        raise CmhbenchError(f"{source_name(images)} has shape {images.shape}; expected the {split} images items "
                            "first (items×features or items×height×width×3)")
    item_images = ItemArray([(images, 0)], "images")
    item_texts = to_matrix(texts.read(), str(texts))
    item_labels = to_labels(labels.read(), num_labels, str(labels))
    for role, source, count in (("texts", texts, len(item_texts)), ("labels", labels, len(item_labels))):
        if count != item_images.num_items:
            raise CmhbenchError(f"{images.file}: '{images.key}' has {item_images.num_items} items but the {split} "
                                f"{role} ({source}) have {count}: mismatched item counts")
    return item_images, item_texts, item_labels


def _load_split_layout(arrays_by_file, files, num_labels) -> Items:
    """DAPH-style files: query (test_*), database (data_set, dataset_*), train (train_*) ⊂ database."""
    merged: dict[str, SourceArray] = {}
    for arrays in arrays_by_file:
        merged.update(arrays)
    parts = {split: _split_part(*(merged[key] for key in keys), split, num_labels)
             for split, keys in SPLIT_KEYS.items()}
    items = _items_of_splits(parts, files, "split", f"{merged['train_data'].file} 'train_data'",
                             "split taken from the files (test = queries, data_set = retrieval, train ⊂ data_set)")
    items.sources = _split_label_sources({split: merged[keys[2]] for split, keys in SPLIT_KEYS.items()})
    return items


def _split_label_sources(labels: dict[str, SourceArray]) -> dict[str, str]:
    """Each split's labels by name ("labels:query"...), and all of them ("labels")."""
    sources = {f"labels:{split}": source_name(array) for split, array in labels.items()}
    sources["labels"] = "; ".join(sources.values())
    return sources


def _split_files(files: list[Path]) -> dict[str, Path] | None:
    """The split-files layout's file of each split, when the files are exactly one per split."""
    found: dict[str, Path] = {}
    for path in files:
        split = next((s for s, names in SPLIT_FILE_NAMES.items() if path.stem.lower() in names), None)
        if split is None or split in found:
            return None
        found[split] = path
    return found if len(found) == len(SPLIT_FILE_NAMES) else None


def _load_split_files(by_split: dict[str, Path], arrays: dict[Path, dict[str, SourceArray]], num_labels: int) -> Items:
    """One file per split (UCMFH's train/query/retrieval pickles of CLIP features): train ⊂ retrieval."""
    parts, labels = {}, {}
    for split, path in by_split.items():
        found = {role: _gather([arrays[path]], aliases)
                 for role, aliases in (("images", IMAGE_KEYS), ("texts", TEXT_KEYS), ("labels", LABEL_KEYS))}
        missing = [role for role, sources in found.items() if not sources]
        if missing:
            raise CmhbenchError(f"{path}: the {split} file has no {', '.join(missing)} (image: one of "
                                f"{', '.join(IMAGE_KEYS)}; text: {', '.join(TEXT_KEYS)}; label: {', '.join(LABEL_KEYS)}); "
                                f"found keys {', '.join(sorted(arrays[path]))}")
        parts[split] = _split_part(found["images"][0], found["texts"][0], found["labels"][0], split, num_labels)
        labels[split] = found["labels"][0]
    names = {split: path.name for split, path in by_split.items()}
    items = _items_of_splits(parts, list(by_split.values()), "split-files", str(by_split["train"]),
                             f"split taken from the files ({names['query']} = queries, {names['retrieval']} = "
                             f"retrieval, {names['train']} ⊂ retrieval)")
    items.sources = _split_label_sources(labels)
    return items


def _items_of_splits(parts: dict, files: list[Path], layout: str, train_name: str, note: str) -> Items:
    """Canonical items from already-split parts: the queries followed by the retrieval set; the
    training items are located in the retrieval set by the content of their image, text and label."""
    q_images, q_texts, q_labels = parts["query"]
    d_images, d_texts, d_labels = parts["retrieval"]
    t_images, t_texts, t_labels = parts["train"]
    where = {}
    block = 2048
    for start in range(0, d_images.num_items, block):
        pixels = d_images.read(start, min(start + block, d_images.num_items))
        for offset, image in enumerate(pixels):
            row = start + offset
            where.setdefault(_row_digest(image, d_texts[row], d_labels[row]), row)
    train_rows = []
    for start in range(0, t_images.num_items, block):
        pixels = t_images.read(start, min(start + block, t_images.num_items))
        for offset, image in enumerate(pixels):
            row = start + offset
            digest = _row_digest(image, t_texts[row], t_labels[row])
            if digest not in where:
                raise CmhbenchError(f"{train_name}: training item {row} is not in the retrieval set; the {layout} "
                                    "layout expects train ⊂ retrieval")
            train_rows.append(where[digest])
    nq = q_images.num_items
    images = ItemArray(q_images.parts + d_images.parts, "images")
    splits = {"query": np.arange(nq), "retrieval": nq + np.arange(d_images.num_items),
              "train": nq + np.sort(np.asarray(train_rows, dtype=np.int64))}
    return Items(images=images, texts=np.concatenate([q_texts, d_texts]),
                 labels=np.concatenate([q_labels, d_labels]), layout=layout, files=files, splits=splits, notes=[note])
