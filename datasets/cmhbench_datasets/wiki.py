"""Wikipedia (Rasiwasia et al., ACM MM 2010) from its original release files.

``raw_features.mat`` holds 128-d SIFT bag-of-visual-words image features (``I_tr``, ``I_te``) and
10-topic LDA text features (``T_tr``, ``T_te``); ``trainset_txt_img_cat.list`` and
``testset_txt_img_cat.list`` give, row for row, text id, image id and the category 1-10.
Protocol: the 693 test pairs are the queries, the 2,173 training pairs are both training and
retrieval set. Canonical item order: training pairs, then test pairs.

Single-file versions that circulate with code releases (``I_tr``, ``I_te``, ``T_tr``, ``T_te``,
``L_tr``, ``L_te`` in one MATLAB v5/v7.3, HDF5 or .npz file, either orientation, labels one-hot or
class indices) are read by `read_single_file` into the same canonical data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from cmhbench.data.layouts import ItemArray, Items, check_numeric, check_orientation, source_name, to_labels, to_matrix
from cmhbench.data.readers import SourceArray, read_source
from cmhbench.data.untrusted import check_regular_file
from cmhbench.errors import CmhbenchError

FILES = ("raw_features.mat", "trainset_txt_img_cat.list", "testset_txt_img_cat.list")
NUM_TRAIN, NUM_TEST, NUM_CLASSES = 2173, 693, 10
CATEGORIES = ("art", "biology", "geography", "history", "literature", "media", "music", "royalty",
              "sport", "warfare")


def _locate(sources: Sequence[str | Path]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for source in sources:
        path = Path(source).expanduser()
        candidates = list(path.iterdir()) if path.is_dir() else [path]
        if not path.exists():
            raise CmhbenchError(f"source {path} does not exist")
        for candidate in candidates:
            if candidate.name in FILES + ("categories.list",):
                found[candidate.name] = candidate
    missing = [f for f in FILES if f not in found]
    if missing:
        raise CmhbenchError(f"the Wikipedia release needs {', '.join(FILES)}; missing {', '.join(missing)} "
                            f"in {', '.join(map(str, sources))}")
    for path in found.values():
        check_regular_file(path, "source file")
    return found


def _categories(path: Path, expected: int) -> np.ndarray:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CmhbenchError(f"{path}: not UTF-8 text ({exc}); expected lines 'text id<TAB>image id<TAB>category'") from None
    rows = [line.split("\t") for line in text.splitlines() if line.strip()]
    bad = next((i for i, r in enumerate(rows) if len(r) != 3 or not r[2].strip().isdigit()), None)
    if bad is not None:
        raise CmhbenchError(f"{path}: line {bad + 1} is not 'text id<TAB>image id<TAB>category'")
    if len(rows) != expected:
        raise CmhbenchError(f"{path}: {len(rows)} lines, expected {expected}")
    return np.array([int(r[2]) for r in rows])


# The single-file versions that circulate with code releases (MTFH's wikiData.mat, SCRATCH's
# wiki_data.mat and others): training and test blocks of each modality and their labels
SINGLE_FILE_KEYS = {"I_tr": NUM_TRAIN, "I_te": NUM_TEST, "T_tr": NUM_TRAIN, "T_te": NUM_TEST,
                    "L_tr": NUM_TRAIN, "L_te": NUM_TEST}


def _single_file(sources: Sequence[str | Path]) -> Path | None:
    """The one source file when it holds the single-file layout's keys (not the release's folder)."""
    if len(sources) != 1 or not Path(sources[0]).expanduser().is_file():
        return None
    path = Path(sources[0]).expanduser()
    return None if path.name in FILES else path


def _items_first(value: np.ndarray, rows: int, where: str, orientation: str) -> np.ndarray:
    """``value`` with items along axis 0: the axis of length ``rows`` (either orientation)."""
    value = np.asarray(value)
    if value.ndim == 0:
        raise CmhbenchError(f"{where} is a single number; expected {rows} items along one axis")
    if value.ndim == 1:
        if len(value) != rows:
            raise CmhbenchError(f"{where} has {len(value)} entries; expected {rows} items")
        return value
    if orientation == "items-last" or (orientation == "auto" and value.shape[0] != rows and value.shape[-1] == rows):
        value = value.T
    if value.shape[0] != rows:
        raise CmhbenchError(f"{where} has shape {value.shape}; expected {rows} items along one axis")
    return value


def read_single_file(path: Path, orientation: str = "auto") -> Items:
    """A single-file Wikipedia version: I_tr/I_te (image features), T_tr/T_te (text features) and
    L_tr/L_te (labels: one-hot, or class indices 1-10 or 0-9), MATLAB v5 or v7.3, HDF5 or .npz, each
    array items-first or items-last. Same canonical data as the release when the content is."""
    arrays = read_source(path)
    missing = [key for key in SINGLE_FILE_KEYS if key not in arrays]
    if missing:
        raise CmhbenchError(f"{path}: not a Wikipedia file: missing key(s) {', '.join(missing)} (found "
                            f"{', '.join(sorted(arrays)) or 'none'}); give the release's folder (raw_features.mat and "
                            "the two .list files) or one file with I_tr, I_te, T_tr, T_te, L_tr, L_te")
    for key in SINGLE_FILE_KEYS:
        check_numeric(arrays[key], "labels" if key.startswith("L") else "features")
    blocks = {key: _items_first(arrays[key].read(), rows, str(arrays[key]), orientation)
              for key, rows in SINGLE_FILE_KEYS.items()}
    for key in ("I_tr", "I_te", "T_tr", "T_te"):
        blocks[key] = to_matrix(blocks[key], str(arrays[key]))
    label_blocks = [blocks["L_tr"], blocks["L_te"]]  # N×1 class-index columns are squeezed by to_labels
    if label_blocks[0].ndim != label_blocks[1].ndim:
        raise CmhbenchError(f"{path}: 'L_tr' and 'L_te' differ in form (one-hot vs class indices)")
    if label_blocks[0].ndim == 2 and label_blocks[0].shape[1] != label_blocks[1].shape[1]:
        raise CmhbenchError(f"{path}: 'L_tr' is {label_blocks[0].shape} but 'L_te' is {label_blocks[1].shape}; "
                            f"expected both one-hot (items×{NUM_CLASSES}) or both class indices")
    # one call on both blocks: 1- or 0-based class numbers are decided on all labels together
    labels = to_labels(np.concatenate(label_blocks), NUM_CLASSES, f"{path}: L_tr+L_te")
    items = _items(blocks, labels, [path], "wikipedia-single-file", path)
    # training pairs are both training and retrieval set, test pairs the queries
    items.sources = {"texts": f"{path}: 'T_tr'+'T_te'", "labels": f"{path}: 'L_tr'+'L_te'",
                     "labels:query": source_name(arrays["L_te"]), "labels:retrieval": source_name(arrays["L_tr"]),
                     "labels:train": source_name(arrays["L_tr"])}
    return items


def _items(blocks: dict[str, np.ndarray], labels: np.ndarray, files: list[Path], layout: str, image_file: Path) -> Items:
    for a, b in (("I_tr", "I_te"), ("T_tr", "T_te")):
        if blocks[a].shape[1] != blocks[b].shape[1]:
            raise CmhbenchError(f"{image_file}: '{a}' and '{b}' have different widths")
    images = np.concatenate([blocks["I_tr"], blocks["I_te"]])
    source = SourceArray(image_file, "I_tr+I_te", images.shape, images.dtype, lambda i: images[i])
    train = np.arange(NUM_TRAIN)
    return Items(images=ItemArray([(source, 0)], "images"), texts=np.concatenate([blocks["T_tr"], blocks["T_te"]]),
                 labels=labels, layout=layout, files=files,
                 splits={"query": NUM_TRAIN + np.arange(NUM_TEST), "retrieval": train, "train": train},
                 notes=["standard protocol: test pairs are queries; training pairs are training and retrieval set"])


def read_release(sources: Sequence[str | Path], orientation: str = "auto") -> Items:
    """The release folder (or its three files), or a single-file version (`read_single_file`). The
    release's arrays are row-per-item as the lists are; ``orientation`` applies to single files."""
    check_orientation(orientation)
    single = _single_file(sources)
    if single is not None:
        return read_single_file(single, orientation)
    files = _locate(sources)
    arrays = read_source(files["raw_features.mat"])
    for key in ("I_tr", "I_te", "T_tr", "T_te"):
        if key not in arrays:
            raise CmhbenchError(f"{files['raw_features.mat']}: missing key '{key}' (found {', '.join(sorted(arrays))})")
    blocks = {}
    for key, rows in (("I_tr", NUM_TRAIN), ("I_te", NUM_TEST), ("T_tr", NUM_TRAIN), ("T_te", NUM_TEST)):
        value = to_matrix(check_numeric(arrays[key], "features").read(), str(arrays[key]))
        if value.shape[0] != rows:
            raise CmhbenchError(f"{arrays[key]} has shape {value.shape}, expected {rows} rows")
        blocks[key] = value
    labels = to_labels(np.concatenate([_categories(files["trainset_txt_img_cat.list"], NUM_TRAIN),
                                       _categories(files["testset_txt_img_cat.list"], NUM_TEST)]),
                       NUM_CLASSES, "Wikipedia category lists")
    items = _items(blocks, labels, [files[f] for f in FILES], "wikipedia-release", files["raw_features.mat"])
    items.sources = {"texts": f"{files['raw_features.mat']}: 'T_tr'+'T_te'", "labels": "Wikipedia category lists"}
    return items
