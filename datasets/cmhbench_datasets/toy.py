"""`toy`: a synthetic multi-label image-text dataset, generated deterministically from a seed.

Each item belongs to one of a few latent scenes; a scene makes some labels likely together (label
co-occurrence). Each present label draws its own shape in its own colour, at a random place and
size, on a noisy background (sometimes it fails to appear: label noise on the image side); the text
is a binary bag of words holding a few of each present label's words plus random noise words
(sometimes a label's words are missing: label noise on the text side). Learning is possible and
measurable, but neither modality is a clean copy of the labels.

Each item also has a caption, for CLIP's text tower: its words, each bag-of-words column named by a
made-up two-syllable word (`word_names`). Captions are derived from the stored
bag of words when the dataset is opened, so the file, its digest and every existing run are as
they were; a run that reads captions has their digest in its definition.

Splits follow the MIRFLICKR-25K proportions: 10 % queries, half of the items for training, drawn
from the retrieval set. Files are cached as canonical HDF5 keyed by every generation parameter.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping

import numpy as np

from cmhbench.data import load_canonical, write_canonical
from cmhbench.data.dataset import Dataset
from cmhbench.errors import CmhbenchError
from cmhbench.fsutil import cache_home

GENERATOR_VERSION = "1"
LABEL_NAMES = ["red-disc", "green-square", "blue-triangle", "yellow-ring", "magenta-cross",
               "cyan-hbar", "orange-vbar", "white-diamond", "purple-disc", "lime-ring"]
_COLOURS = np.array([
    [220, 40, 40], [40, 200, 60], [50, 80, 230], [235, 220, 40], [220, 50, 220],
    [40, 220, 230], [250, 150, 30], [245, 245, 245], [130, 50, 180], [160, 240, 60],
], dtype=np.float32)
_SHAPES = ["disc", "square", "triangle", "ring", "cross", "hbar", "vbar", "diamond", "disc", "ring"]

OPTION_DEFAULTS: dict[str, Any] = {
    "size": 1000,          # number of image-text pairs
    "image_size": 32,      # square images, pixels per side (the ImageNet backbones need 63 or more)
    "vocabulary": 400,     # bag-of-words width
    "seed": 0,             # generation seed (not the run seed)
}
_SCENES = 8
_WORDS_PER_LABEL = 12


def _scene_label_probabilities(rng: np.random.Generator, num_labels: int) -> np.ndarray:
    probs = np.full((_SCENES, num_labels), 0.02)
    for scene in range(_SCENES):
        favoured = rng.choice(num_labels, size=2, replace=False)
        probs[scene, favoured] = rng.uniform(0.4, 0.75, size=2)
    return probs


def _shape_mask(shape: str, yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, radius: float) -> np.ndarray:
    dy, dx = yy - cy, xx - cx
    if shape == "disc":
        return dy**2 + dx**2 <= radius**2
    if shape == "ring":
        dist = np.sqrt(dy**2 + dx**2)
        return (dist <= radius) & (dist >= 0.55 * radius)
    if shape == "square":
        return (np.abs(dy) <= radius * 0.85) & (np.abs(dx) <= radius * 0.85)
    if shape == "diamond":
        return np.abs(dy) + np.abs(dx) <= radius
    if shape == "triangle":
        return (dy <= radius * 0.8) & (dy >= -radius) & (np.abs(dx) <= (dy + radius) * 0.6)
    if shape == "cross":
        arm = radius * 0.3
        return ((np.abs(dy) <= arm) & (np.abs(dx) <= radius)) | ((np.abs(dx) <= arm) & (np.abs(dy) <= radius))
    if shape == "hbar":
        return (np.abs(dy) <= radius * 0.3) & (np.abs(dx) <= radius * 1.2)
    if shape == "vbar":
        return (np.abs(dx) <= radius * 0.3) & (np.abs(dy) <= radius * 1.2)
    raise ValueError(shape)


def generate(size: int = 1000, image_size: int = 32, vocabulary: int = 400, seed: int = 0,
             num_labels: int = len(LABEL_NAMES)) -> dict[str, Any]:
    """Generate the arrays and splits. Same parameters, same bytes, on any machine."""
    if size < 20:
        raise CmhbenchError(f"toy option size={size}: expected at least 20 pairs")
    if image_size < 16:
        raise CmhbenchError(f"toy option image_size={image_size}: expected at least 16 "
                            "(and at least 63 for the ImageNet backbones)")
    if vocabulary < num_labels * _WORDS_PER_LABEL:
        raise CmhbenchError(
            f"toy option vocabulary={vocabulary}: expected at least {num_labels * _WORDS_PER_LABEL}")
    rng = np.random.default_rng(seed)
    scene_probs = _scene_label_probabilities(rng, num_labels)
    scenes = rng.integers(0, _SCENES, size=size)
    labels = (rng.random((size, num_labels)) < scene_probs[scenes]).astype(np.uint8)
    empty = labels.sum(1) == 0
    labels[empty, rng.integers(0, num_labels, size=int(empty.sum()))] = 1

    word_ids = rng.permutation(vocabulary)[: num_labels * _WORDS_PER_LABEL].reshape(num_labels, _WORDS_PER_LABEL)
    texts = np.zeros((size, vocabulary), dtype=np.float32)
    images = np.empty((size, image_size, image_size, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:image_size, 0:image_size].astype(np.float32)
    for item in range(size):
        background = rng.uniform(20, 110) + rng.normal(0, 12, size=(image_size, image_size, 3))
        canvas = background.astype(np.float32)
        for label in np.flatnonzero(labels[item]):
            if rng.random() < 0.9:  # the shape may be missing from the image
                radius = rng.uniform(0.12, 0.22) * image_size
                cy, cx = rng.uniform(radius, image_size - radius, size=2)
                mask = _shape_mask(_SHAPES[label], yy, xx, cy, cx, radius)
                tint = _COLOURS[label] + rng.normal(0, 15, size=3)
                canvas[mask] = tint
            if rng.random() < 0.9:  # the label's words may be missing from the text
                chosen = rng.choice(word_ids[label], size=rng.integers(2, 6), replace=False)
                texts[item, chosen] = 1.0
        noise_words = rng.integers(0, vocabulary, size=rng.poisson(6))
        texts[item, noise_words] = 1.0
        canvas += rng.normal(0, 8, size=canvas.shape)
        images[item] = np.clip(canvas, 0, 255).astype(np.uint8)

    order = np.random.default_rng(seed + 1).permutation(size)
    num_query = max(2, size // 10)
    query = np.sort(order[:num_query])
    retrieval = np.sort(order[num_query:])
    train = np.sort(order[num_query: num_query + size // 2])
    return {"images": images, "texts": texts, "labels": labels,
            "splits": {"query": query, "retrieval": retrieval, "train": train}}


_CONSONANTS, _VOWELS = "bdfgklmnprstvz", "aeiou"


def word_names(vocabulary: int) -> list[str]:
    """A distinct made-up word for each bag-of-words column, the same on every machine: two syllables
    (one or two of CLIP's BPE tokens, so that most default captions fit the 32 tokens DCHMT and MITH
    read; 4.7 % are cut), three for columns beyond the 4,900 two-syllable words."""
    syllables = [c + v for c in _CONSONANTS for v in _VOWELS]
    words = [a + b for a in syllables for b in syllables]
    order = [words[i] for i in np.random.default_rng(12345).permutation(len(words))]
    extra = (a + b + c for a in syllables for b in syllables for c in syllables)
    while len(order) < vocabulary:
        order.append(next(extra))
    return order[:vocabulary]


def captions_from_words(texts: np.ndarray) -> np.ndarray:
    """Each present word's name, in column order: one caption per item."""
    names = word_names(texts.shape[1])
    return np.asarray([" ".join(names[j] for j in np.flatnonzero(row)) for row in texts],
                      dtype=object)


def parse_options(options: Mapping[str, Any]) -> dict[str, int]:
    unknown = set(options) - set(OPTION_DEFAULTS)
    if unknown:
        raise CmhbenchError(
            f"unknown toy dataset option(s) {', '.join(sorted(unknown))}; known: {', '.join(OPTION_DEFAULTS)}")
    parsed = dict(OPTION_DEFAULTS)
    for key, value in options.items():
        try:
            parsed[key] = int(value)
        except (TypeError, ValueError):
            raise CmhbenchError(f"toy dataset option {key}={value!r}: expected an integer") from None
    return parsed


def open_toy(options: Mapping[str, Any]) -> Dataset:
    """Generate (once, cached as canonical HDF5) and load the toy dataset."""
    params = parse_options(options)
    key = json.dumps({"generator": GENERATOR_VERSION, **params}, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()
    name = f"toy-n{params['size']}-px{params['image_size']}-v{params['vocabulary']}-s{params['seed']}-g{GENERATOR_VERSION}.h5"
    path = cache_home() / "toy" / name
    if path.exists():
        try:
            return _with_captions(load_canonical(path))
        except CmhbenchError:  # a cached copy written by an older cmhbench, or damaged: generate it again
            pass
    arrays = generate(**params)
    write_canonical(
        path, **arrays, name="toy", version=f"{GENERATOR_VERSION}:{digest[:12]}",
        label_names=LABEL_NAMES, source_sha256={"generator": digest},
        image_kind="pixels", text_kind="bow", protocol="toy",
    )
    return _with_captions(load_canonical(path))


def _with_captions(dataset: Dataset) -> Dataset:
    dataset.captions = captions_from_words(np.asarray(dataset.texts))
    return dataset
