"""MIRFLICKR-25K as plain files: an image list, a label matrix and comma-separated tags.

``all_imgs.txt`` (one relative image path per line), ``all_labels.txt`` (one row of 0/1 labels per
line) and ``all_tags.txt`` (comma-separated tags per line), plus the folder the image paths are
relative to. Images are decoded and resized to 224×224 (bilinear) as they are written, block by
block; the bag of words has one column per distinct tag, in alphabetical order (the cleaned set's
tag file holds exactly the standard 1,386-word vocabulary).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cmhbench.data.layouts import ItemArray, Items, to_labels
from cmhbench.data.readers import SourceArray
from cmhbench.data.untrusted import check_regular_file
from cmhbench.errors import CmhbenchError

LIST_FILES = ("all_imgs.txt", "all_labels.txt", "all_tags.txt")
IMAGE_SIZE = 224


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            rgb = image.convert("RGB").resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR)
            return np.asarray(rgb, dtype=np.uint8)
    except FileNotFoundError:
        raise CmhbenchError(f"image {path} listed in all_imgs.txt does not exist") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise CmhbenchError(f"image {path} cannot be decoded ({exc})") from None


def _find_list_files(sources: Sequence[str | Path]) -> tuple[dict[str, Path], list[Path]]:
    """The three list files (in a source folder or given as files) and the folders to find images in."""
    files: dict[str, Path] = {}
    roots: list[Path] = []
    for source in sources:
        path = Path(source).expanduser()
        if not path.exists():
            raise CmhbenchError(f"source {path} does not exist")
        if path.is_dir():
            roots.append(path)
            files.update({name: path / name for name in LIST_FILES if (path / name).is_file() and name not in files})
        elif path.name in LIST_FILES:
            files[path.name] = path
    missing = [f for f in LIST_FILES if f not in files]
    if missing:
        raise CmhbenchError(f"the image-list layout needs {', '.join(LIST_FILES)} and the image folder; missing {', '.join(missing)}")
    for path in files.values():
        check_regular_file(path, "source file")
    return files, roots


def tag_bags(tag_lines: Sequence[str]) -> tuple[np.ndarray, int]:
    """Binary bags of words over the sorted tag vocabulary of comma-separated tag lines."""
    tags = [sorted({t.strip() for t in line.split(",") if t.strip()}) for line in tag_lines]
    vocabulary = {word: i for i, word in enumerate(sorted({t for row in tags for t in row}))}
    texts = np.zeros((len(tags), len(vocabulary)), dtype=np.float32)
    for row, words in enumerate(tags):
        texts[row, [vocabulary[w] for w in words]] = 1.0
    return texts, len(vocabulary)


def _read_text(path: Path, expected: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CmhbenchError(f"{path}: not UTF-8 text ({exc}); expected {expected}") from None


def read_image_list(sources: Sequence[str | Path], num_labels: int) -> Items:
    files, roots = _find_list_files(sources)
    image_paths = [line.strip() for line in _read_text(files["all_imgs.txt"], "one relative image path per line")
                   .splitlines() if line.strip()]
    n = len(image_paths)
    if n == 0:
        raise CmhbenchError(f"{files['all_imgs.txt']}: lists no images; expected one relative image path per line")
    try:
        labels = np.loadtxt(files["all_labels.txt"], dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise CmhbenchError(f"{files['all_labels.txt']}: not a matrix of numbers ({exc})") from None
    tag_lines = _read_text(files["all_tags.txt"], "comma-separated tags, one line per image").split("\n")[:n]
    for name, count in (("all_labels.txt", len(labels)), ("all_tags.txt", len(tag_lines))):
        if count != n:
            raise CmhbenchError(f"{files[name]} has {count} rows but all_imgs.txt lists {n} images")
    texts, vocabulary_size = tag_bags(tag_lines)

    def locate(relative: str) -> Path:
        for root in roots or [files["all_imgs.txt"].parent]:
            for candidate in (root / relative, root / Path(relative).name):
                if candidate.exists():
                    return candidate
        return (roots[0] if roots else files["all_imgs.txt"].parent) / relative

    def read(index: tuple) -> np.ndarray:
        rows = range(n)[index[0]]
        return np.stack([_read_image(locate(image_paths[r])) for r in rows])

    source = SourceArray(files["all_imgs.txt"], "images", (n, IMAGE_SIZE, IMAGE_SIZE, 3), np.dtype(np.uint8), read)
    return Items(images=ItemArray([(source, 0)], "images"), texts=texts,
                 labels=to_labels(labels, num_labels, str(files["all_labels.txt"])), layout="image-list",
                 files=[files[f] for f in LIST_FILES],
                 notes=[f"bag of words over {vocabulary_size} tags"],
                 sources={"texts": str(files["all_tags.txt"]), "labels": str(files["all_labels.txt"])})
