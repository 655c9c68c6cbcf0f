"""The canonical HDF5 file: writing it atomically, and loading it with full validation.

Layout (see DESIGN.md)::

    /images            uint8 N×H×W×3, chunked by item   (or float32 N×D when image_kind=features)
    /texts             float32 N×T              (absent when text_kind=captions: captions are the only text)
    /captions          UTF-8 strings, N         (optional: one caption or tag string per item)
    /labels            uint8 N×C multi-hot
    /splits/query      int64    /splits/retrieval int64    /splits/train int64
    attrs: name, version, label_names (JSON), source_sha256 (JSON), image_kind, text_kind, protocol,
           content_sha256 (cmhbench.data.digest: checked on every load)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Callable

import h5py
import numpy as np

from cmhbench.data import digest
from cmhbench.data.dataset import SPLIT_NAMES, Dataset
from cmhbench.errors import CmhbenchError
from cmhbench.fsutil import atomic_path

FORMAT_VERSION = 1
_REQUIRED_ATTRS = ("name", "version", "label_names", "source_sha256", "image_kind", "text_kind")
# Arrays up to this size are read into memory at load time; larger ones stay in the file and are
# streamed in chunks (see cmhbench.data.sources).
#: image sets up to this size are read into memory when loaded (and moved to the device once, where
#: they fit its budget); larger ones are streamed from the file in blocks. Part of what a run is: the
#: two paths shuffle differently, so changing it changes the codes of runs whose run_id it keeps
IN_MEMORY_BYTES = 2 * 1024**3
_FINITE_CHECK_ROWS = 65536
#: what /texts holds: a bag of words, feature vectors, or nothing ("captions": the captions are the text)
TEXT_KINDS = ("bow", "features", "captions")


def write_canonical(
    path: str | Path,
    *,
    images: np.ndarray,
    texts: np.ndarray | None,
    labels: np.ndarray,
    splits: Mapping[str, np.ndarray],
    name: str,
    version: str,
    label_names: list[str],
    source_sha256: Mapping[str, str],
    image_kind: str,
    text_kind: str,
    protocol: str = "",
    compression: str | None = None,
    extra_attrs: Mapping[str, Any] | None = None,
    on_items: Callable[[int], None] | None = None,
    captions: Sequence[str] | None = None,
) -> Path:
    """Write a canonical dataset file atomically and return its path.

    ``images`` is an array or a block source (``shape``, ``dtype`` and ``read(start, stop)``), so
    that image sets larger than memory are written block by block; ``on_items(n)`` is told as each
    block of n items is written (a progress bar). ``captions`` (one string per item) are stored
    beside the texts, or alone with ``texts=None`` and ``text_kind="captions"``.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            if image_kind == "pixels":
                chunks = (1, *images.shape[1:])
                node = f.create_dataset("images", shape=images.shape, dtype="uint8", chunks=chunks,
                                        compression=compression)
            else:
                node = f.create_dataset("images", shape=images.shape, dtype="float32")
            _copy_in_blocks(images, node, on_items)
            if texts is not None:
                f.create_dataset("texts", data=np.asarray(texts, dtype=np.float32))
            if captions is not None:
                f.create_dataset("captions", data=list(captions), dtype=h5py.string_dtype("utf-8"))
            f.create_dataset("labels", data=np.asarray(labels, dtype=np.uint8))
            group = f.create_group("splits")
            for split in SPLIT_NAMES:
                group.create_dataset(split, data=np.asarray(splits[split], dtype=np.int64))
            f.attrs["format_version"] = FORMAT_VERSION
            f.attrs["name"] = name
            f.attrs["version"] = version
            f.attrs["label_names"] = json.dumps(list(label_names))
            f.attrs["source_sha256"] = json.dumps(dict(source_sha256))
            f.attrs["image_kind"] = image_kind
            f.attrs["text_kind"] = text_kind
            f.attrs["protocol"] = protocol
            for key, value in (extra_attrs or {}).items():
                f.attrs[key] = value
            f.attrs[METADATA_ATTRIBUTE] = metadata_digest(f)
            f.attrs[digest.ATTRIBUTE] = digest.content_digest(f)
        # Validate what was written before it becomes visible under the final name (its arrays were
        # hashed just above: the content check is not repeated here)
        _validate_and_build(tmp, display_path=path, keep_open=False, check_content=False)
    return path


def _copy_in_blocks(images: Any, node: h5py.Dataset, on_items: Callable[[int], None] | None = None,
                    block_bytes: int = 256 * 1024**2) -> None:
    """Copy an array, or a block source (``shape`` and ``read(start, stop)``), in bounded memory."""
    item_bytes = int(np.prod(images.shape[1:])) * node.dtype.itemsize
    step = max(1, block_bytes // max(item_bytes, 1))
    read = images.read if hasattr(images, "read") else (lambda a, b: images[a:b])
    for start in range(0, images.shape[0], step):
        stop = min(start + step, images.shape[0])
        node[start:stop] = np.asarray(read(start, stop), dtype=node.dtype)
        if on_items is not None:
            on_items(stop - start)


def load_canonical(path: str | Path) -> Dataset:
    """Open and validate a canonical dataset file. Raises `CmhbenchError` naming the file and key."""
    path = Path(path)
    if not path.exists():
        raise CmhbenchError(f"dataset file {path} does not exist")
    return _validate_and_build(path, display_path=path, keep_open=True)


def _validate_and_build(path: Path, *, display_path: Path, keep_open: bool, check_content: bool = True) -> Dataset:
    where = str(display_path)
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise CmhbenchError(
            f"{where} is not a readable HDF5 file ({exc}); re-create it (it may be truncated)"
        ) from None
    try:
        dataset = _build(handle, where)
        dataset.content_sha256 = (_check_content(handle, path, where) if check_content
                                  else str(_attr(handle, digest.ATTRIBUTE, where)))
    except CmhbenchError:
        handle.close()
        raise
    except (OSError, KeyError, ValueError) as exc:
        handle.close()
        raise CmhbenchError(f"{where}: cannot read the dataset file ({exc}); it may be corrupt") from None
    if not keep_open:
        handle.close()
    return dataset


def _require(handle: h5py.File, key: str, where: str) -> h5py.Dataset:
    if key not in handle:
        raise CmhbenchError(f"{where}: missing key '/{key}' (expected by the canonical format)")
    node = handle[key]
    if not isinstance(node, h5py.Dataset):
        raise CmhbenchError(f"{where}: '/{key}' is a group, expected an array")
    return node


def _attr(handle: h5py.File, key: str, where: str) -> Any:
    if key not in handle.attrs:
        raise CmhbenchError(f"{where}: missing attribute '{key}' on the root group")
    value = handle.attrs[key]
    return value.decode() if isinstance(value, bytes) else value


def _kinds(handle: h5py.File, where: str) -> tuple[str, str]:
    image_kind = str(_attr(handle, "image_kind", where))
    text_kind = str(_attr(handle, "text_kind", where))
    if image_kind not in ("pixels", "features"):
        raise CmhbenchError(f"{where}: attribute image_kind={image_kind!r}, expected 'pixels' or 'features'")
    if text_kind not in TEXT_KINDS:
        raise CmhbenchError(f"{where}: attribute text_kind={text_kind!r}, expected one of {', '.join(TEXT_KINDS)}")
    return image_kind, text_kind


def _read_labels(handle: h5py.File, where: str) -> np.ndarray:
    node = _require(handle, "labels", where)
    if node.ndim != 2:
        raise CmhbenchError(f"{where}: '/labels' has shape {node.shape}, expected N×C (2-d)")
    labels = node[()]
    if labels.size and not np.isin(labels, (0, 1)).all():
        raise CmhbenchError(f"{where}: '/labels' must be multi-hot 0/1, found other values")
    return labels.astype(np.uint8, copy=False)


def _check_arrays(images: h5py.Dataset, texts: h5py.Dataset | None, image_kind: str, num_items: int,
                  where: str) -> None:
    if image_kind == "pixels":
        if images.ndim != 4 or images.shape[3] != 3 or images.dtype != np.uint8:
            raise CmhbenchError(
                f"{where}: '/images' is {images.dtype} {images.shape}, expected uint8 N×H×W×3 for pixels"
            )
    elif images.ndim != 2 or images.dtype.kind != "f":
        raise CmhbenchError(f"{where}: '/images' is {images.dtype} {images.shape}, expected float N×D features")
    if texts is not None and (texts.ndim != 2 or texts.dtype.kind != "f"):
        raise CmhbenchError(f"{where}: '/texts' is {texts.dtype} {texts.shape}, expected float N×T")
    for key, node in (("images", images), ("texts", texts)):
        if node is not None and node.shape[0] != num_items:
            raise CmhbenchError(
                f"{where}: '/{key}' has {node.shape[0]} items but '/labels' has {num_items}; "
                "every array must have one row per item"
            )


def _read_captions(handle: h5py.File, num_items: int, where: str, required: bool) -> np.ndarray | None:
    """The captions as a numpy array of str, or None when the file has none."""
    if "captions" not in handle:
        if required:
            raise CmhbenchError(f"{where}: text_kind is 'captions' but there is no '/captions' array")
        return None
    node = _require(handle, "captions", where)
    if node.ndim != 1 or node.shape[0] != num_items or h5py.check_string_dtype(node.dtype) is None:
        raise CmhbenchError(f"{where}: '/captions' is {node.dtype} {node.shape}, expected {num_items} UTF-8 strings")
    try:
        return np.asarray(node.asstr()[()], dtype=object)
    except UnicodeDecodeError as exc:
        raise CmhbenchError(f"{where}: '/captions' holds bytes that are not UTF-8 ({exc}); prepare the file again") from None


def _read_split(handle: h5py.File, split: str, num_items: int, where: str) -> np.ndarray:
    indices = _require(handle, f"splits/{split}", where)[()]
    if indices.ndim != 1 or indices.dtype.kind not in "iu":
        raise CmhbenchError(f"{where}: '/splits/{split}' must be a 1-d integer array")
    if len(indices) == 0:
        raise CmhbenchError(f"{where}: '/splits/{split}' is empty")
    if indices.min() < 0 or indices.max() >= num_items:
        raise CmhbenchError(f"{where}: '/splits/{split}' has indices outside 0..{num_items - 1}")
    if len(np.unique(indices)) != len(indices):
        raise CmhbenchError(f"{where}: '/splits/{split}' repeats an index")
    return indices.astype(np.int64)


def _json_attrs(handle: h5py.File, num_labels: int, where: str) -> tuple[list, dict]:
    try:
        label_names = json.loads(_attr(handle, "label_names", where))
        source_sha256 = json.loads(_attr(handle, "source_sha256", where))
    except json.JSONDecodeError as exc:
        raise CmhbenchError(f"{where}: attribute label_names/source_sha256 is not valid JSON ({exc})") from None
    if len(label_names) != num_labels:
        raise CmhbenchError(f"{where}: attribute label_names has {len(label_names)} names for {num_labels} label columns")
    return label_names, source_sha256


def _build(handle: h5py.File, where: str) -> Dataset:
    for key in _REQUIRED_ATTRS:
        _attr(handle, key, where)
    image_kind, text_kind = _kinds(handle, where)
    images = _require(handle, "images", where)
    texts = None if text_kind == "captions" else _require(handle, "texts", where)
    labels = _read_labels(handle, where)
    _check_arrays(images, texts, image_kind, len(labels), where)
    captions = _read_captions(handle, len(labels), where, required=text_kind == "captions")
    splits = {split: _read_split(handle, split, len(labels), where) for split in SPLIT_NAMES}
    if np.intersect1d(splits["query"], splits["retrieval"]).size:
        raise CmhbenchError(f"{where}: '/splits/query' and '/splits/retrieval' overlap; they must be disjoint")
    if np.setdiff1d(splits["train"], splits["retrieval"]).size:
        raise CmhbenchError(f"{where}: '/splits/train' must be drawn from '/splits/retrieval'")
    for key, node in (("images", images), ("texts", texts)):
        if node is not None and node.dtype.kind == "f":
            _check_finite(node, key, where)
    label_names, source_sha256 = _json_attrs(handle, labels.shape[1], where)

    def maybe_in_memory(node: h5py.Dataset) -> Any:
        return node[()] if node.size * node.dtype.itemsize <= IN_MEMORY_BYTES else node

    return Dataset(
        name=str(_attr(handle, "name", where)),
        version=str(_attr(handle, "version", where)),
        images=maybe_in_memory(images),
        texts=None if texts is None else maybe_in_memory(texts),
        labels=labels,
        captions=captions,
        splits=splits,
        label_names=list(label_names),
        image_kind=image_kind,
        text_kind=text_kind,
        source_sha256=dict(source_sha256),
        protocol=str(handle.attrs.get("protocol", "")),
        path=Path(where),
    )


#: a digest of the root attributes (name, version, label names, layout, ...): what enters a run's
#: identity besides the arrays, so that an edited attribute is refused as an edited array is
METADATA_ATTRIBUTE = "metadata_sha256"
_NOT_METADATA = {digest.ATTRIBUTE, METADATA_ATTRIBUTE, "source_paths"}  # where the sources were is not what they are


def metadata_digest(handle: h5py.File) -> str:
    def plain(value: Any) -> Any:
        value = value.decode() if isinstance(value, bytes) else value
        return value.item() if isinstance(value, np.generic) else value

    attrs = {key: plain(handle.attrs[key]) for key in sorted(handle.attrs) if key not in _NOT_METADATA}
    return hashlib.sha256(json.dumps(attrs, sort_keys=True, default=str).encode()).hexdigest()


def _check_content(handle: h5py.File, path: Path, where: str) -> str:
    """The recorded content digest, after checking that the arrays and the attributes still match."""
    if digest.ATTRIBUTE not in handle.attrs:
        raise CmhbenchError(f"{where}: no content digest (attribute '{digest.ATTRIBUTE}'): the file was prepared "
                            "by an older cmhbench; prepare it again with `cmhbench data prepare`")
    # files prepared before the attribute digest existed have none (`data verify` says so): preparing
    # the large datasets again takes hours, and their arrays are still checked
    if METADATA_ATTRIBUTE in handle.attrs and str(_attr(handle, METADATA_ATTRIBUTE, where)) != metadata_digest(handle):
        raise CmhbenchError(f"{where}: its attributes (name, version, label names, layout, ...) do not match the "
                            "digest recorded when the file was prepared: the file was changed after `cmhbench data "
                            "prepare`; prepare it again")
    recorded = str(_attr(handle, digest.ATTRIBUTE, where))
    actual = digest.verified_digest(handle, path)
    if actual != recorded:
        raise CmhbenchError(f"{where}: the arrays do not match the content digest recorded when the file was "
                            f"prepared (recorded {recorded[:16]}..., now {actual[:16]}...): the file was changed "
                            "after `cmhbench data prepare`; prepare it again")
    return recorded


def _check_finite(node: h5py.Dataset, key: str, where: str) -> None:
    for start in range(0, node.shape[0], _FINITE_CHECK_ROWS):
        block = node[start:start + _FINITE_CHECK_ROWS]
        if not np.isfinite(block).all():
            row = start + int(np.argwhere(~np.isfinite(block))[0][0])
            raise CmhbenchError(f"{where}: '/{key}' contains NaN or Inf (first at row {row})")
