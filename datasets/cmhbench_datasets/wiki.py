"""Wikipedia (Rasiwasia et al., ACM MM 2010) from its original release files.

``raw_features.mat`` holds 128-d SIFT bag-of-visual-words image features (``I_tr``, ``I_te``) and
10-topic LDA text features (``T_tr``, ``T_te``); ``trainset_txt_img_cat.list`` and
``testset_txt_img_cat.list`` give, row for row, text id, image id and the category 1-10.
Protocol: the 693 test pairs are the queries, the 2,173 training pairs are both training and
retrieval set. Canonical item order: training pairs, then test pairs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from cmhbench.data.layouts import ItemArray, Items, to_labels, to_matrix
from cmhbench.data.readers import SourceArray, read_source
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
    return found


def _categories(path: Path, expected: int) -> np.ndarray:
    rows = [line.split("\t") for line in path.read_text().splitlines() if line.strip()]
    bad = next((i for i, r in enumerate(rows) if len(r) != 3 or not r[2].strip().isdigit()), None)
    if bad is not None:
        raise CmhbenchError(f"{path}: line {bad + 1} is not 'text id<TAB>image id<TAB>category'")
    if len(rows) != expected:
        raise CmhbenchError(f"{path}: {len(rows)} lines, expected {expected}")
    return np.array([int(r[2]) for r in rows])


def read_release(sources: Sequence[str | Path], orientation: str = "auto") -> Items:
    """The release's arrays are row-per-item as the lists are; ``orientation`` has nothing to decide."""
    files = _locate(sources)
    arrays = read_source(files["raw_features.mat"])
    for key in ("I_tr", "I_te", "T_tr", "T_te"):
        if key not in arrays:
            raise CmhbenchError(f"{files['raw_features.mat']}: missing key '{key}' (found {', '.join(sorted(arrays))})")
    blocks = {}
    for key, rows in (("I_tr", NUM_TRAIN), ("I_te", NUM_TEST), ("T_tr", NUM_TRAIN), ("T_te", NUM_TEST)):
        value = to_matrix(arrays[key].read(), str(arrays[key]))
        if value.shape[0] != rows:
            raise CmhbenchError(f"{arrays[key]} has shape {value.shape}, expected {rows} rows")
        blocks[key] = value
    for a, b in (("I_tr", "I_te"), ("T_tr", "T_te")):
        if blocks[a].shape[1] != blocks[b].shape[1]:
            raise CmhbenchError(f"{files['raw_features.mat']}: '{a}' and '{b}' have different widths")
    labels = to_labels(np.concatenate([_categories(files["trainset_txt_img_cat.list"], NUM_TRAIN),
                                       _categories(files["testset_txt_img_cat.list"], NUM_TEST)]),
                       NUM_CLASSES, "Wikipedia category lists")
    images = np.concatenate([blocks["I_tr"], blocks["I_te"]])
    source = SourceArray(files["raw_features.mat"], "I_tr+I_te", images.shape, images.dtype, lambda i: images[i])
    train = np.arange(NUM_TRAIN)
    return Items(images=ItemArray([(source, 0)], "images"), texts=np.concatenate([blocks["T_tr"], blocks["T_te"]]),
                 labels=labels, layout="wikipedia-release",
                 files=[files[f] for f in FILES],
                 splits={"query": NUM_TRAIN + np.arange(NUM_TEST), "retrieval": train, "train": train},
                 notes=["standard protocol: test pairs are queries; training pairs are training and retrieval set"])
