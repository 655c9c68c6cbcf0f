"""Bad source files for `data prepare`: each is one CmhbenchError naming the file and the key and
saying what was expected, raised before anything is written (no prepared file, no partial file)."""

from __future__ import annotations

import pickle

import h5py
import numpy as np
import pytest
import scipy.io
import torch
from cmhbench_datasets import dchmt_files, image_list, wiki
from cmhbench_datasets.standard import PROFILES

from cmhbench.data.prepare import DatasetProfile, prepare, prepared_path
from cmhbench.errors import CmhbenchError

N, C = 40, 5


def profile(name: str, **changes) -> DatasetProfile:
    split = {"query": np.array([0, 9, 13, 30]), "train": np.array([1, 2, 3, 5, 20, 21, 22, 25, 39])}
    values = dict(name=name, title=name, counts=(N,), num_labels=C, query=4, train=9, fixed_split=lambda n: split)
    values.update(changes)
    return DatasetProfile(**values)


def arrays():
    rng = np.random.default_rng(0)
    labels = (rng.random((N, C)) < 0.4).astype(np.uint8)
    labels[labels.sum(1) == 0, 0] = 1
    return {"images": rng.random((N, 8)).astype(np.float32), "YAll": (rng.random((N, 6)) < 0.3).astype(np.float32),
            "LAll": labels}


def refused(name: str, sources, match: str, **options) -> str:
    """Prepare ``name`` from ``sources``: one line matching ``match``, and nothing left behind."""
    chosen = options.pop("profile", None) or profile(name)
    target = prepared_path(chosen.name)
    before = target.read_bytes() if target.exists() else None  # an earlier test's real preparation
    with pytest.raises(CmhbenchError, match=match) as caught:
        prepare(chosen, sources, **options)
    message = str(caught.value)
    assert "\n" not in message
    assert (target.read_bytes() if target.exists() else None) == before
    assert not list(target.parent.glob(".*partial"))
    return message


def npz(path, **changes):
    values = {**arrays(), **changes}
    np.savez(path, **values)
    return [path]


# ---- 1: a truncated .npy ----------------------------------------------------------------------------

def test_a_truncated_npy_is_named(tmp_path):
    np.save(tmp_path / "images.npy", arrays()["images"])
    whole = (tmp_path / "images.npy").read_bytes()
    (tmp_path / "images.npy").write_bytes(whole[:len(whole) // 2])
    refused("cut-npy", [tmp_path / "images.npy"], r"images\.npy is not a readable \.npy file .*truncated")


# ---- 2, 3: MATLAB structs and cells, strings and complex numbers where numbers are expected ---------

def test_a_matlab_struct_as_labels_is_named(tmp_path):
    values = arrays()
    scipy.io.savemat(tmp_path / "s.mat", {"images": values["images"], "YAll": values["YAll"], "LAll": {"a": 1}})
    refused("struct", [tmp_path / "s.mat"], r"s\.mat: 'LAll' holds a MATLAB struct .*expected a numeric .* labels")


def test_a_matlab_cell_as_labels_is_named(tmp_path):
    values = arrays()
    scipy.io.savemat(tmp_path / "c.mat", {"images": values["images"], "YAll": values["YAll"],
                                          "LAll": np.array([["a"]] * N, dtype=object)})
    refused("cell", [tmp_path / "c.mat"], r"c\.mat: 'LAll' holds a MATLAB cell array")


@pytest.mark.parametrize("key, change, found", [
    ("YAll", lambda v: v.astype(str), "strings"),           # numbers written as text would parse silently
    ("images", lambda v: v.astype(str), "strings"),
    ("images", lambda v: v.astype(complex), "complex numbers"),  # the imaginary part would be dropped
    ("LAll", lambda v: v.astype(str), "strings"),
])
def test_non_numeric_arrays_are_refused_with_their_dtype(tmp_path, key, change, found):
    sources = npz(tmp_path / "a.npz", **{key: change(arrays()[key])})
    refused(f"dtype-{key}", sources, rf"a\.npz: '{key}' holds {found} \(.*\); expected a numeric")


def test_non_numeric_arrays_in_split_files_are_refused(tmp_path):
    values = arrays()
    for split in ("query", "retrieval", "train"):
        with open(tmp_path / f"{split}.pkl", "wb") as handle:
            pickle.dump({"image": values["images"], "text": values["YAll"],
                         "label": values["LAll"].astype(np.complex64)}, handle)
    refused("split-complex", [tmp_path], r"query\.pkl: 'label' (holds complex|is complex64, not a numeric)")


# ---- 4: Wikipedia ------------------------------------------------------------------------------------

def wiki_release(folder, **features):
    """The release's three files with 1-d features (small), classes 1..10 row for row."""
    folder.mkdir()
    rng = np.random.default_rng(1)
    values = {"I_tr": rng.random((wiki.NUM_TRAIN, 3)), "I_te": rng.random((wiki.NUM_TEST, 3)),
              "T_tr": rng.random((wiki.NUM_TRAIN, 2)), "T_te": rng.random((wiki.NUM_TEST, 2)), **features}
    scipy.io.savemat(folder / "raw_features.mat", values)
    for name, rows in (("trainset_txt_img_cat.list", wiki.NUM_TRAIN), ("testset_txt_img_cat.list", wiki.NUM_TEST)):
        (folder / name).write_text("".join(f"t{i}\ti{i}\t{i % 10 + 1}\n" for i in range(rows)))
    return folder


def wiki_single(path, **changes):
    rng = np.random.default_rng(2)
    values = {"I_tr": rng.random((wiki.NUM_TRAIN, 3)), "I_te": rng.random((wiki.NUM_TEST, 3)),
              "T_tr": rng.random((wiki.NUM_TRAIN, 2)), "T_te": rng.random((wiki.NUM_TEST, 2)),
              "L_tr": np.eye(10)[np.arange(wiki.NUM_TRAIN) % 10], "L_te": np.eye(10)[np.arange(wiki.NUM_TEST) % 10]}
    values.update(changes)
    if path.suffix == ".mat":
        scipy.io.savemat(path, values)
    else:
        np.savez(path, **values)
    return [path]


def test_wiki_string_features_are_named(tmp_path):
    folder = wiki_release(tmp_path / "wiki", I_tr=np.array(["x"] * wiki.NUM_TRAIN))
    refused("wiki", [folder], r"raw_features\.mat: 'I_tr' holds strings", profile=PROFILES["wiki"])


def test_a_wiki_list_that_is_not_utf8_is_named(tmp_path):
    folder = wiki_release(tmp_path / "wiki")
    (folder / "trainset_txt_img_cat.list").write_bytes(b"t\xe9\ti\t1\n" * wiki.NUM_TRAIN)
    refused("wiki", [folder], r"trainset_txt_img_cat\.list: not UTF-8 text .*expected lines", profile=PROFILES["wiki"])


def test_wiki_cell_labels_beside_one_hot_labels_are_named(tmp_path):
    sources = wiki_single(tmp_path / "w.mat", L_tr=np.array([["a"]] * wiki.NUM_TRAIN, dtype=object))
    refused("wiki", sources, r"w\.mat: 'L_tr' holds a MATLAB cell array", profile=PROFILES["wiki"])


def test_wiki_class_index_column_beside_one_hot_labels_is_named(tmp_path):
    sources = wiki_single(tmp_path / "w.npz", L_tr=(np.arange(wiki.NUM_TRAIN) % 10 + 1)[:, None])
    refused("wiki", sources, r"w\.npz: 'L_tr' is \(2173, 1\) but 'L_te' is \(693, 10\)", profile=PROFILES["wiki"])


def test_a_scalar_wiki_feature_is_named(tmp_path):
    sources = wiki_single(tmp_path / "w.npz", I_tr=np.array(1.0))
    refused("wiki", sources, r"w\.npz:I_tr is a single number; expected 2173 items", profile=PROFILES["wiki"])


# ---- 5: MIRFLICKR's image lists -------------------------------------------------------------------------

def image_lists(folder, imgs: bytes = b"im/0.png\n", labels: bytes = b"1 0 0 0 0\n", tags: bytes = b"a,b\n"):
    folder.mkdir()
    for name, content in (("all_imgs.txt", imgs), ("all_labels.txt", labels), ("all_tags.txt", tags)):
        (folder / name).write_bytes(content)
    return [folder]


def list_profile(name: str) -> DatasetProfile:
    return profile(name, reader=lambda sources, orientation="auto": image_list.read_image_list(sources, C))


@pytest.mark.parametrize("name, content", [("all_tags.txt", b"caf\xe9\n"), ("all_imgs.txt", b"im/\xe9.png\n")])
def test_image_lists_that_are_not_utf8_are_named(tmp_path, name, content):
    sources = image_lists(tmp_path / "lists", **{name[4:-4]: content})
    refused("lists", sources, rf"{name}: not UTF-8 text", profile=list_profile("lists"))


def test_empty_image_lists_are_named(tmp_path):
    sources = image_lists(tmp_path / "lists", b"", b"", b"")
    refused("lists", sources, r"all_imgs\.txt: lists no images", profile=list_profile("lists"))


# ---- 6: DCHMT files ------------------------------------------------------------------------------------

def test_a_v73_index_marked_cell_holding_numbers_is_named(tmp_path):
    folder = tmp_path / "dchmt"
    folder.mkdir()
    with h5py.File(folder / "index.mat", "w") as f:
        f.create_dataset("index", data=np.zeros((1, 3), np.uint64)).attrs["MATLAB_class"] = np.bytes_("cell")
    scipy.io.savemat(folder / "caption.mat", {"caption": np.array(["a b", "c d", "e f"])})
    scipy.io.savemat(folder / "label.mat", {"label": np.eye(3)})
    dchmt = profile("dchmt", counts=(3,), num_labels=3,
                    reader=lambda sources, orientation="auto": dchmt_files.read_dchmt_files(
                        sources, num_labels=3, counts=(3,), orientation=orientation))
    refused("dchmt", [folder], r"index\.mat: 'index' is marked a MATLAB cell array but holds uint64 numbers",
            profile=dchmt)


# ---- 7: UCMFH-style pickles ----------------------------------------------------------------------------

@pytest.mark.parametrize("image, match", [
    ([[1.0, 2.0], [3.0]], r"query\.pkl: 'image' is a ragged list"),
    (np.float32(1.0), r"query\.pkl: 'image' has shape \(\); expected the query images items first"),
])
def test_split_file_pickles_with_a_ragged_or_scalar_image_are_named(tmp_path, image, match):
    values = arrays()
    for split in ("query", "retrieval", "train"):
        with open(tmp_path / f"{split}.pkl", "wb") as handle:
            pickle.dump({"image": image, "text": values["YAll"], "label": values["LAll"]}, handle)
    refused("pickles", [tmp_path], match)


# ---- 8: [0, 1] float pixels ------------------------------------------------------------------------------

def test_float_pixels_in_zero_one_are_refused_not_made_black(tmp_path):
    sources = npz(tmp_path / "p.npz", images=np.full((N, 4, 4, 3), 0.5, np.float32))
    message = refused("pixels", sources, r"p\.npz:images .*pixel values must be 0\.\.255, found floats from 0\.5")
    assert "multiplied by 255" in message


def test_float_pixels_of_0_to_255_are_rounded_not_truncated(tmp_path):
    """Whole numbers, and fractions left by a resize's interpolation (199.6 is 200, not 199)."""
    images = np.full((N, 4, 4, 3), 200.0, np.float32)
    images[:, 0, 0, 0] = 199.6
    report = prepare(profile("float-pixels"), npz(tmp_path / "p.npz", images=images))
    assert report.items == N
    from cmhbench.data.prepare import open_prepared

    pixels = open_prepared("float-pixels").images[:]
    assert pixels.dtype == np.uint8 and (pixels == 200).all()


# ---- 9, 10: empty texts, no labels -----------------------------------------------------------------------

def test_zero_width_texts_are_refused(tmp_path):
    sources = npz(tmp_path / "t.npz", YAll=arrays()["YAll"][:, :0])
    refused("no-texts", sources, r"t\.npz: 'YAll' \(40, 0\): empty text features")


def test_all_zero_labels_name_the_labels_key(tmp_path):
    sources = npz(tmp_path / "z.npz", LAll=np.zeros((N, C), np.uint8))
    message = refused("no-labels", sources, r"z\.npz: 'LAll': no item has a label")
    assert "splits" not in message and ".h5" not in message


def test_wiki_training_labels_all_zero_name_l_tr(tmp_path):
    sources = wiki_single(tmp_path / "w.npz", L_tr=np.zeros((wiki.NUM_TRAIN, 10)))
    refused("wiki", sources, r"w\.npz: 'L_tr': no item of the retrieval split has a label", profile=PROFILES["wiki"])


# ---- 11: --orientation ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["wiki", "mirflickr", "mirflickr-dchmt", "coco-dchmt"])
def test_an_unknown_orientation_is_refused_for_every_reader(tmp_path, name):
    sources = wiki_release(tmp_path / "wiki")  # never read: the option is checked first
    refused(name, [sources], r"--orientation 'sideways': expected one of auto, items-first, items-last",
            profile=PROFILES[name], orientation="sideways")


# ---- 12: --image-weights -------------------------------------------------------------------------------

class _RunsCode:
    def __reduce__(self):
        return (print, ("this must never run",))


@pytest.mark.parametrize("content, match", [
    ({"a": _RunsCode()}, r"evil\.pt is not a state dict for toy-cnn \(not a plain file of tensors"),
    ({"something": torch.zeros(1)}, r"evil\.pt is not a state dict for toy-cnn: 8 missing keys \(.*, \.\.\.\); "
                                    r"1 unexpected key \(something\)"),
    ([1, 2], r"evil\.pt is not a state dict for toy-cnn: it holds a list"),
])
def test_bad_weight_files_are_one_line(tmp_path, content, match):
    from cmhbench.encoders.toycnn import create_toy_cnn

    torch.save(content, tmp_path / "evil.pt")
    with pytest.raises(CmhbenchError, match=match) as caught:
        create_toy_cnn(str(tmp_path / "evil.pt"))
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 400


def test_a_weights_folder_is_named_as_a_folder(tmp_path):
    from cmhbench.encoders.toycnn import create_toy_cnn

    with pytest.raises(CmhbenchError, match=r"image weights .* is a folder; expected 'none' or a state-dict file"):
        create_toy_cnn(str(tmp_path))


def test_an_empty_hdf5_dataset_beside_the_arrays_is_passed_over(tmp_path):
    """A null dataspace (h5py.Empty) anywhere in a source file is no array: the reader once failed on
    it with a TypeError whatever key it sat under."""
    from cmhbench.data.readers import read_source

    path = tmp_path / "s.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("notes", data=h5py.Empty("f"))
        f.create_dataset("LAll", data=arrays()["LAll"])
    assert sorted(read_source(path)) == ["LAll"]
