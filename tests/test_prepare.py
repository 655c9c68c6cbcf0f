"""Preparing datasets: every supported layout of the same items gives the same canonical data."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import scipy.io
from cmhbench_datasets import image_list

from cmhbench.data import load_canonical
from cmhbench.data.prepare import DatasetProfile, open_prepared, prepare, prepared_path, verify
from cmhbench.errors import CmhbenchError

N, H, W, T, C = 40, 8, 6, 12, 5  # H != W so that a height/width swap would show


def truth():
    rng = np.random.default_rng(0)
    labels = (rng.random((N, C)) < 0.35).astype(np.uint8)
    labels[labels.sum(1) == 0, 0] = 1
    labels[[4, 17]] = 0  # two unlabelled items: dropped by the protocol
    return {"images": rng.integers(0, 256, (N, H, W, 3), dtype=np.uint8),
            "texts": (rng.random((N, T)) < 0.3).astype(np.float32), "labels": labels}


def profile(**changes):
    split = {"query": np.array([0, 4, 9, 13, 30]), "train": np.array([1, 2, 3, 5, 17, 20, 21, 22, 25, 39])}
    values = dict(name="tiny", title="tiny", counts=(N,), num_labels=C, query=5, train=10,
                  fixed_split=lambda n: split)
    values.update(changes)
    return DatasetProfile(**values)


def write_matlab_v73(path, arrays):
    """As MATLAB writes -v7.3: a 512-byte user block with the MATLAB header, every array stored
    with its axes reversed (column-major), and a MATLAB_class attribute."""
    with h5py.File(path, "w", userblock_size=512) as f:
        for key, value in arrays.items():
            node = f.create_dataset(key, data=np.ascontiguousarray(np.asarray(value).transpose()))
            node.attrs["MATLAB_class"] = np.bytes_("uint8" if value.dtype == np.uint8 else "double")
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Nov 23 2026 HDF5 schema 1.00 ."
    with open(path, "r+b") as raw:
        raw.write(header.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02IM")


def matlab_order(images):  # N×H×W×3 -> MATLAB's H×W×3×N
    return images.transpose(1, 2, 3, 0)


def layouts(tmp_path, data):
    out = {}
    np.savez(tmp_path / "a.npz", images=data["images"], YAll=data["texts"], LAll=data["labels"])
    out["npz"] = [tmp_path / "a.npz"]
    scipy.io.savemat(tmp_path / "v5.mat", {"images": matlab_order(data["images"]), "YAll": data["texts"].astype(float),
                                           "LAll": data["labels"].astype(float)})
    out["mat-v5"] = [tmp_path / "v5.mat"]
    write_matlab_v73(tmp_path / "v73.mat", {"images": matlab_order(data["images"]), "YAll": data["texts"].astype(float),
                                            "LAll": data["labels"].astype(float)})
    out["mat-v7.3"] = [tmp_path / "v73.mat"]
    parts = tmp_path / "parts"
    parts.mkdir()
    write_matlab_v73(parts / "IAll_1.mat", {"IAll": matlab_order(data["images"][:25])})
    write_matlab_v73(parts / "IAll_2.mat", {"IAll": matlab_order(data["images"][25:])})
    write_matlab_v73(parts / "tags_labels.mat", {"YAll": data["texts"].astype(float), "LAll": data["labels"].astype(float)})
    out["multi-file"] = [parts]
    with h5py.File(tmp_path / "chw.h5", "w") as f:  # Python-written, channels first
        f["images"] = data["images"].transpose(0, 3, 1, 2)
        f["tags"] = data["texts"]
        f["labels"] = data["labels"]
    out["hdf5-nchw"] = [tmp_path / "chw.h5"]
    return out


def canonical(path):
    ds = load_canonical(path)
    return ds.images[()], ds.texts, ds.labels, {k: v.tolist() for k, v in ds.splits.items()}


def test_every_layout_gives_identical_canonical_data(tmp_path):
    data = truth()
    results = {}
    for layout, sources in layouts(tmp_path, data).items():
        report = prepare(profile(), sources)
        assert report.dropped_unlabeled == 2 and report.items == N - 2, layout
        results[layout] = canonical(report.path)
    reference = results["npz"]
    keep = np.flatnonzero(data["labels"].sum(1) > 0)
    np.testing.assert_array_equal(reference[0], data["images"][keep])
    np.testing.assert_array_equal(reference[1], data["texts"][keep])
    # the split follows the fixed file, minus the dropped items, remapped
    assert len(reference[3]["query"]) == 4 and len(reference[3]["train"]) == 9
    for layout, result in results.items():
        for a, b in zip(result[:3], reference[:3], strict=True):
            np.testing.assert_array_equal(a, b, err_msg=layout)
        assert result[3] == reference[3], layout


def test_features_and_class_index_labels(tmp_path):
    rng = np.random.default_rng(1)
    features = rng.random((N, 16))
    classes = rng.integers(1, C + 1, N)  # MATLAB-style 1-based class indices
    classes[:C] = np.arange(1, C + 1)
    scipy.io.savemat(tmp_path / "f.mat", {"X": features, "Y": rng.random((N, 7)), "L": classes[:, None]})
    report = prepare(profile(), [tmp_path / "f.mat"])
    ds = load_canonical(report.path)
    assert ds.image_kind == "features" and ds.text_kind == "features"
    np.testing.assert_allclose(ds.images, features.astype(np.float32))
    assert (ds.labels.argmax(1) == classes - 1).all() and (ds.labels.sum(1) == 1).all()


def test_split_layout_keeps_the_files_split(tmp_path):
    data = truth()
    keep = np.flatnonzero(data["labels"].sum(1) > 0)
    query, database = keep[:6], keep[6:]
    train = database[[3, 0, 7, 12]]
    with h5py.File(tmp_path / "daph.h5", "w") as f:
        for prefix, rows in (("test", query), ("train", train)):
            f[f"{prefix}_data"], f[f"{prefix}_y"], f[f"{prefix}_L"] = data["images"][rows], data["texts"][rows], data["labels"][rows]
        f["data_set"], f["dataset_y"], f["dataset_L"] = data["images"][database], data["texts"][database], data["labels"][database]
    report = prepare(profile(counts=(len(keep),)), [tmp_path / "daph.h5"])
    ds = load_canonical(report.path)
    assert report.layout == "split" and ds.split_sizes() == {"query": 6, "retrieval": len(database), "train": 4}
    np.testing.assert_array_equal(ds.images[ds.splits["train"]], data["images"][np.sort(train)])


def test_prepared_dataset_is_found_and_verified(tmp_path):
    data = truth()
    sources = layouts(tmp_path, data)["npz"]
    prepare(profile(), sources)
    assert open_prepared("tiny").num_items == N - 2
    report = verify("tiny")
    assert report.ok and any("sha256 matches" in line for line in report.lines)
    np.savez(sources[0], images=data["images"], YAll=data["texts"] * 0, LAll=data["labels"])
    report = verify("tiny")
    assert not report.ok and any("CHECKSUM MISMATCH" in line for line in report.lines)


def test_missing_prepared_dataset_names_the_command():
    with pytest.raises(CmhbenchError, match="cmhbench data prepare nothing-here --source PATH"):
        open_prepared("nothing-here")


def bad_sources(tmp_path, data):
    def npz(name, **arrays):
        np.savez(tmp_path / name, **arrays)
        return [tmp_path / name]

    truncated = tmp_path / "cut.mat"
    write_matlab_v73(tmp_path / "whole.mat", {"images": matlab_order(data["images"]), "YAll": data["texts"],
                                              "LAll": data["labels"]})
    truncated.write_bytes((tmp_path / "whole.mat").read_bytes()[:3000])
    (tmp_path / "junk.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"garbage" * 10)
    nan_texts = data["texts"].copy()
    nan_texts[7, 3] = np.nan
    return {
        "missing key": (npz("m.npz", images=data["images"], YAll=data["texts"]), "missing labels"),
        "wrong shape": (npz("s.npz", images=data["images"][..., 0], YAll=data["texts"], LAll=data["labels"]),
                        "images must be 4-d .* or 2-d features .*; got 3-d"),
        "mismatched counts": (npz("c.npz", images=data["images"], YAll=data["texts"][:-1], LAll=data["labels"]),
                              "'YAll' has shape \\(39, 12\\), but this dataset has 40 items"),
        "nan": (npz("n.npz", images=data["images"], YAll=nan_texts, LAll=data["labels"]),
                "contains NaN or Inf \\(first at item 7\\)"),
        "truncated": ([truncated], "cut.mat is not a readable HDF5 or MATLAB v7.3 file"),
        "not hdf5": ([tmp_path / "junk.h5"], "junk.h5 is not a readable HDF5"),
        "missing file": ([tmp_path / "absent.mat"], "absent.mat does not exist"),
    }


@pytest.mark.parametrize("case", ["missing key", "wrong shape", "mismatched counts", "nan", "truncated",
                                  "not hdf5", "missing file"])
def test_bad_sources_are_named_and_leave_nothing(tmp_path, case):
    sources, message = bad_sources(tmp_path, truth())[case]
    with pytest.raises(CmhbenchError, match=message):
        prepare(profile(name=f"bad-{case.replace(' ', '-')}"), sources)
    assert not prepared_path(f"bad-{case.replace(' ', '-')}").exists()
    assert not list(prepared_path("x").parent.glob(".*partial"))


def test_ambiguous_orientation_asks_the_user(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "sq.npz", X=rng.random((N, N)), Y=rng.random((N, 3)), L=np.eye(C)[rng.integers(0, C, N)])
    with pytest.raises(CmhbenchError, match="--orientation items-first or items-last"):
        prepare(profile(name="sq"), [tmp_path / "sq.npz"])
    report = prepare(profile(name="sq"), [tmp_path / "sq.npz"], orientation="items-first")
    assert report.items == N


def test_image_list_layout_with_real_tags(tmp_path):
    """MIRFLICKR's plain files: real labels and tags from ../shared/data; the images (not shipped
    there) are only decoded when written, so the text side is checked on the full real set."""
    from conftest import shared_data

    meta = shared_data("mirflickr25k-meta")
    items = image_list.read_image_list([meta / "all_imgs.txt", meta / "all_labels.txt", meta / "all_tags.txt"], 24)
    assert items.texts.shape == (20015, 1386)  # the standard 1,386-word tag vocabulary
    np.testing.assert_array_equal(items.labels, np.loadtxt(meta / "all_labels.txt").astype(np.uint8))
    first_tags = (meta / "all_tags.txt").read_text().split("\n")[0].split(",")
    assert items.texts[0].sum() == len(set(first_tags))


def test_image_list_layout_end_to_end(tmp_path):
    from PIL import Image

    data = truth()
    (tmp_path / "imgs").mkdir()
    for i in range(N):
        Image.fromarray(data["images"][i]).save(tmp_path / "imgs" / f"im{i}.png")
    (tmp_path / "all_imgs.txt").write_text("\n".join(f"imgs/im{i}.png" for i in range(N)) + "\n")
    np.savetxt(tmp_path / "all_labels.txt", data["labels"], fmt="%d")
    words = [",".join(f"w{j}" for j in np.flatnonzero(row)) for row in data["texts"]]
    (tmp_path / "all_tags.txt").write_text("\n".join(words) + "\n")
    tiny = profile(name="tiny-list", reader=lambda sources, orientation="auto": image_list.read_image_list(sources, C))
    report = prepare(tiny, [tmp_path])
    ds = load_canonical(report.path)
    assert ds.images.shape == (N - 2, 224, 224, 3) and report.layout == "image-list"
    keep = np.flatnonzero(data["labels"].sum(1) > 0)
    # the bag of words reproduces the tag sets (alphabetical vocabulary over the tags seen)
    assert (ds.texts.sum(1) == data["texts"][keep].sum(1)).all()
    with pytest.raises(CmhbenchError, match="missing all_tags.txt"):
        (tmp_path / "all_tags.txt").unlink()
        prepare(tiny, [tmp_path])
