"""The DCHMT/MITH files (index.mat, caption.mat or caption.txt, label.mat), built here the way their
releases' make_mirflickr25k.py scripts build them from the real MIRFLICKR-25K lists in ../shared/data
(MATLAB v5 with scipy, as they do, and a MATLAB v7.3 re-save), read back item for item; MITH's
split; and a small set prepared end to end."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io as scio
from PIL import Image

from cmhbench.data import load_canonical
from cmhbench.errors import CmhbenchError
from cmhbench_datasets.dchmt_files import dchmt_split, read_dchmt_files
from conftest import shared_data


def _mirflickr_lists():
    folder = shared_data("mirflickr25k-meta")
    tags = (folder / "all_tags.txt").read_text(encoding="utf-8").splitlines()
    labels = np.loadtxt(folder / "all_labels.txt", dtype=np.float32)
    images = [line.strip() for line in (folder / "all_imgs.txt").read_text().splitlines()]
    return tags, labels, images


def mith_builder(out: Path, image_root: str) -> tuple[list[str], np.ndarray]:
    """MM23-MITH dataset/flickr25k/make_mirflickr25k.py's saving, on the real lists."""
    tags, labels, images = _mirflickr_lists()
    captions = [" ".join(line.strip().split(",")) for line in tags]
    paths = [os.path.join(image_root, p.split("/")[1]) for p in images]
    out.mkdir(parents=True, exist_ok=True)
    scio.savemat(out / "index.mat", {"index": np.array(paths)})
    scio.savemat(out / "caption.mat", {"caption": np.array(captions)})
    scio.savemat(out / "label.mat", {"label": labels})
    return captions, labels


def dchmt_builder(out: Path, image_root: str) -> tuple[list[str], np.ndarray]:
    """kalenforn/DCHMT dataset/make_mirflickr25k.py's saving: [[caption], ...], float64 'category'
    vectors, paths under <root>/mirflickr/ (its builder orders items by string-sorted ids and reads the
    raw tags; the same lists in their order stand in here: the file format is what is tested)."""
    tags, labels, images = _mirflickr_lists()
    captions = [" ".join(line.strip().split(",")).strip() for line in tags]
    out.mkdir(parents=True, exist_ok=True)
    scio.savemat(out / "index.mat", {"index": [image_root + "/" + p for p in images]})
    scio.savemat(out / "caption.mat", {"caption": [[c] for c in captions]})
    scio.savemat(out / "label.mat", {"category": [row.astype(np.float64) for row in labels]})
    return captions, labels


def _matlab_v73(path: Path, arrays: dict) -> None:
    """A MATLAB -v7.3 file as MATLAB writes one: HDF5 behind a 512-byte header, every array stored
    transposed, char arrays as uint16 character codes (one column per string)."""
    with h5py.File(path, "w", userblock_size=512) as f:
        for key, value in arrays.items():
            if isinstance(value, list):  # a char matrix, space-padded
                width = max(len(s) for s in value)
                codes = np.array([[ord(c) for c in s.ljust(width)] for s in value], dtype=np.uint16)
                node = f.create_dataset(key, data=codes.T)
                node.attrs["MATLAB_class"] = np.bytes_("char")
            else:
                node = f.create_dataset(key, data=np.asarray(value).T)
                node.attrs["MATLAB_class"] = np.bytes_("single")
    with open(path, "r+b") as raw:
        raw.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Dec  7 03:00:00 2026 HDF5 schema 1.00 .")


def _images(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in names:
        Image.fromarray(rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)).save(folder / name)


def test_mith_files_from_the_real_mirflickr_lists(tmp_path):
    captions, labels = mith_builder(tmp_path / "mith", "/home/someone/flickr_all_images")
    _images(tmp_path / "images", ["im1.jpg", "im2.jpg", "im3.jpg"])
    items = read_dchmt_files([tmp_path / "mith", tmp_path / "images"], num_labels=24, counts=(20015,))
    assert items.captions == captions and items.captions[0] == "cigarette tattoos smoke red dress sunglasses"
    assert np.array_equal(items.labels, labels.astype(np.uint8)) and items.texts is None
    # the builder's absolute paths point at another machine: found by name in the image folder, resized
    # to 224×224 with bicubic filtering as the releases' test transform does
    pixels = items.images.read(0, 3)
    expected = np.asarray(Image.open(tmp_path / "images" / "im2.jpg").convert("RGB").resize((224, 224), Image.BICUBIC))
    assert pixels.shape == (3, 224, 224, 3) and np.array_equal(pixels[1], expected)


def test_dchmt_files_and_a_v73_resave_read_the_same(tmp_path):
    captions, labels = dchmt_builder(tmp_path / "dchmt", "/data/mirflickr25k")
    items = read_dchmt_files([tmp_path / "dchmt"], num_labels=24, counts=(20015,))
    assert items.captions == captions and np.array_equal(items.labels, labels.astype(np.uint8))
    assert items.layout == "dchmt-files"  # its builder's item order differs from MITH's: named in the version
    paths = [f"/data/mirflickr25k/mirflickr/im{i}.jpg" for i in range(1, 20016)]
    v73 = tmp_path / "v73"
    v73.mkdir()
    _matlab_v73(v73 / "index.mat", {"index": paths})
    _matlab_v73(v73 / "caption.mat", {"caption": captions})
    _matlab_v73(v73 / "label.mat", {"label": labels})
    again = read_dchmt_files([v73], num_labels=24, counts=(20015,))
    assert again.captions == captions and np.array_equal(again.labels, items.labels)


def test_coco_cells_and_nuswide_text_captions(tmp_path):
    """DCHMT's MS-COCO caption.mat is a cell of several captions per image (the first is kept);
    its NUS-WIDE captions are caption.txt, one per line."""
    folder = tmp_path / "coco"
    folder.mkdir()
    cells = np.empty((1, 3), dtype=object)
    cells[0, 0] = np.array(["A man riding a horse.", "A rider."], dtype=object)
    cells[0, 1] = np.array(["Two dogs play."], dtype=object)
    cells[0, 2] = np.array(["A plate of food.", "Dinner", "Lunch"], dtype=object)
    scio.savemat(folder / "caption.mat", {"caption": cells})
    scio.savemat(folder / "index.mat", {"index": ["a.jpg", "b.jpg", "c.jpg"]})
    scio.savemat(folder / "label.mat", {"category": np.eye(3)})
    items = read_dchmt_files([folder], num_labels=3, counts=(3,))
    assert items.captions == ["A man riding a horse.", "Two dogs play.", "A plate of food."]
    (folder / "caption.mat").unlink()
    (folder / "caption.txt").write_text("sky clouds\nwater\n123456\n", encoding="utf-8")
    assert read_dchmt_files([folder], num_labels=3, counts=(3,)).captions == ["sky clouds", "water", "123456"]


def test_bad_files_are_one_line_each(tmp_path):
    mith_builder(tmp_path / "mith", "/nowhere")
    with pytest.raises(CmhbenchError, match="files hold 190,421"):
        read_dchmt_files([tmp_path / "mith"], num_labels=24, counts=(190421,))
    items = read_dchmt_files([tmp_path / "mith"], num_labels=24, counts=(20015,))
    with pytest.raises(CmhbenchError, match="im1.jpg .*was not found"):
        items.images.read(0, 1)
    (tmp_path / "mith" / "label.mat").unlink()
    with pytest.raises(CmhbenchError, match="missing label.mat"):
        read_dchmt_files([tmp_path / "mith"], num_labels=24, counts=(20015,))


def test_the_split_is_miths():
    """MITH's load_data.py:split_data, written out: seed 1, the first query_num of the permutation as
    queries, the next train_num for training."""
    np.random.seed(seed=1)
    permutation = np.random.permutation(range(20015))
    split = dchmt_split(2000, 10000)(20015)
    assert np.array_equal(split["query"], permutation[:2000])
    assert np.array_equal(split["train"], permutation[2000:12000])


def test_prepared_end_to_end(tmp_path):
    """A 40-item set in the DCHMT layout prepared to the canonical file: captions as the only text,
    MITH's split, the images found beside index.mat."""
    from cmhbench.data.prepare import prepare
    from cmhbench_datasets.standard import _dchmt_profile

    folder = tmp_path / "set"
    names = [f"im{i}.png" for i in range(40)]
    _images(folder / "images", names)
    captions = [f"caption number {i}" for i in range(40)]
    labels = np.eye(4)[np.arange(40) % 4]
    scio.savemat(folder / "index.mat", {"index": [f"/elsewhere/images/{n}" for n in names]})
    scio.savemat(folder / "caption.mat", {"caption": np.array(captions)})
    scio.savemat(folder / "label.mat", {"label": labels.astype(np.float32)})
    profile = _dchmt_profile("tiny-dchmt", "a test set", 40, 4, 5, 20, "")
    report = prepare(profile, [folder])
    dataset = load_canonical(report.path)
    assert dataset.text_kind == "captions" and list(dataset.captions) == captions
    split = dchmt_split(5, 20)(40)
    assert np.array_equal(dataset.splits["query"], np.sort(split["query"]))
    assert np.array_equal(dataset.splits["train"], np.sort(split["train"]))
    assert dataset.image_shape == (224, 224, 3) and dataset.version.startswith("dchmt:mith-files:40x0")


def test_an_empty_caption_in_a_v73_cell_array_reads_as_empty(tmp_path):
    """MATLAB writes an empty char (or cell) in a -v7.3 file as its dimensions, uint64, flagged
    MATLAB_empty: it is an empty caption, not numbers posing as a cell."""
    from cmhbench_datasets.dchmt_files import _v73_strings

    path = tmp_path / "caption.mat"
    with h5py.File(path, "w", userblock_size=512) as f:
        refs = f.create_group("#refs#")
        text = refs.create_dataset("a", data=np.array([[ord(c)] for c in "two dogs"], dtype=np.uint16))
        text.attrs["MATLAB_class"] = np.bytes_("char")
        empty = refs.create_dataset("b", data=np.array([0, 0], dtype=np.uint64))
        empty.attrs["MATLAB_class"] = np.bytes_("char")
        empty.attrs["MATLAB_empty"] = np.uint8(1)
        cell = f.create_dataset("caption", data=np.array([[text.ref], [empty.ref]], dtype=h5py.ref_dtype))
        cell.attrs["MATLAB_class"] = np.bytes_("cell")
    assert _v73_strings(path, "caption") == ["two dogs", ""]
