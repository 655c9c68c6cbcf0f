"""The real Wikipedia release in ../shared/data/wiki: prepare, verify, and DCMH on it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cmhbench.data import load_canonical
from conftest import run_cli, shared_data


@pytest.fixture(scope="module")
def wiki_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("wiki-home")
    result = run_cli("data", "prepare", "wiki", "--source", str(shared_data("wiki")),
                     env={"CMHBENCH_HOME": str(home), "COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    return home


def test_prepare_follows_the_standard_protocol(wiki_home):
    ds = load_canonical(wiki_home / "prepared" / "wiki.h5")
    assert ds.split_sizes() == {"query": 693, "retrieval": 2173, "train": 2173}
    assert ds.image_kind == "features" and ds.images.shape == (2866, 128) and ds.texts.shape == (2866, 10)
    assert (ds.labels.sum(1) == 1).all() and ds.label_names[0] == "art"
    # categories from the .list files, rows in the same order as the feature matrices
    first = (shared_data("wiki") / "trainset_txt_img_cat.list").read_text().splitlines()[0].split("\t")
    assert ds.labels[0].argmax() == int(first[2]) - 1
    np.testing.assert_allclose(ds.images.sum(1), 1.0, rtol=1e-5)  # SIFT BoVW histograms


def test_verify_checks_the_source_digests(wiki_home):
    result = run_cli("data", "verify", "wiki", env={"CMHBENCH_HOME": str(wiki_home), "COLUMNS": "250"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("sha256 matches") == 3


def test_source_folder_missing_a_file(tmp_path):
    folder = tmp_path / "wiki"
    folder.mkdir()
    for name in ("raw_features.mat", "trainset_txt_img_cat.list"):
        (folder / name).write_bytes((shared_data("wiki") / name).read_bytes())
    result = run_cli("data", "prepare", "wiki", "--source", str(folder),
                     env={"CMHBENCH_HOME": str(tmp_path / "home"), "COLUMNS": "300"})
    assert result.returncode == 1 and "missing testset_txt_img_cat.list" in result.stderr
    assert not (tmp_path / "home" / "prepared" / "wiki.h5").exists()


def test_unprepared_run_tells_the_prepare_command(tmp_path):
    result = run_cli("run", "--method", "dcmh", "--dataset", "wiki", env={"CMHBENCH_HOME": str(tmp_path), "COLUMNS": "300"})
    assert result.returncode == 1 and "cmhbench data prepare wiki --source PATH" in result.stderr


def _run_on_wiki(method: str, bits: int, epochs: int, home, results, preset: str = "quick") -> dict:
    """One short CPU run through the CLI on the prepared Wikipedia data; its result record."""
    result = run_cli("run", "--method", method, "--dataset", "wiki", "--bits", str(bits), "--seeds", "0",
                     "--preset", preset, "--epochs", str(epochs), "--device", "cpu", "--quiet",
                     "--results", str(results), env={"CMHBENCH_HOME": str(home), "COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    record = json.loads(next(results.rglob("*.json")).read_text())
    assert record["encoders"]["image"]["name"] == "identity"
    return record["metrics"]


def test_dcmh_on_wikipedia_reaches_the_linear_baselines(wiki_home, tmp_path):
    """Supervised linear models score 0.22-0.26 both ways here (../shared/data/README.md). DCMH's
    published rates stay at the zero-output saddle on these features (see dcmh.FEATURE_INPUTS); its
    features preset (what the Wikipedia protocol applies), 30 epochs, measured i2t 0.286, t2i 0.607
    (14 s); 500 epochs: 0.285 / 0.692."""
    metrics = _run_on_wiki("dcmh", 32, 30, wiki_home, tmp_path, preset="features")
    assert metrics["i2t"]["map"] >= 0.25
    assert metrics["t2i"]["map"] >= 0.26


def test_ssah_collapse_on_wikipedia_is_visible_in_the_result(wiki_home, tmp_path):
    """SSAH's recipe collapses on single-label data where 90 % of pairs are dissimilar: LabNet's
    non-negative features go to zero and classes share codes. The result says so. Measured (quick
    preset, 2 epochs, 16 bits): LabNet 6 distinct codes for 10 classes, 97.6 % zero features,
    label self-retrieval mAP 0.66; 59-65 % of items share one code in every split (collapsed);
    mAP i2t 0.119, t2i 0.141. At the published schedule (32 bits): 2 class codes, 99.5 % zeros,
    self-retrieval 0.26, mAP 0.146 / 0.204."""
    result = run_cli("run", "--method", "ssah", "--dataset", "wiki", "--bits", "16", "--seeds", "0", "--preset",
                     "quick", "--epochs", "2", "--device", "cpu", "--quiet", "--results", str(tmp_path),
                     env={"CMHBENCH_HOME": str(wiki_home), "COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    record = json.loads(next(tmp_path.rglob("*.json")).read_text())
    labnet = record["diagnostics"]["labnet"]
    assert labnet["classes"] == 10 and labnet["distinct_class_codes"] < 10
    assert labnet["zero_feature_fraction"] > 0.9 and labnet["label_self_map"] < 0.9
    assert any(record["codes"][split][modality]["collapsed"] for split in ("query", "retrieval")
               for modality in ("image", "text"))


@pytest.mark.slow
def test_ssah_published_schedule_on_wikipedia_collapses_visibly(wiki_home, tmp_path):
    """The published schedule (500 epochs, rates frozen from epoch 17; about 10 minutes here).
    Measured at 32 bits: LabNet 2 distinct codes for 10 classes, 99.5 % zero features,
    self-retrieval mAP 0.26; every split collapsed; mAP 0.146 / 0.204."""
    result = run_cli("run", "--method", "ssah", "--dataset", "wiki", "--bits", "32", "--seeds", "0", "--device",
                     "cpu", "--quiet", "--results", str(tmp_path), env={"CMHBENCH_HOME": str(wiki_home)})
    assert result.returncode == 0, result.stderr
    record = json.loads(next(tmp_path.rglob("*.json")).read_text())
    assert record["diagnostics"]["labnet"]["distinct_class_codes"] <= 5
    assert record["codes"]["query"]["text"]["collapsed"]


def _daph_on_wiki(wiki_home):
    """DAPH built for the prepared Wikipedia data (features on both sides), inputs fitted; untrained."""
    from cmhbench.data.sources import SplitData
    from cmhbench.encoders.identity import create_identity
    from cmhbench.method import MethodSetup
    from cmhbench_methods.daph import SPEC

    dataset = load_canonical(wiki_home / "prepared" / "wiki.h5")
    train = SplitData(dataset, "train", "cpu")
    setup = MethodSetup(bits=32, hparams=dict(SPEC.defaults), image_encoder=create_identity("none", 128),
                        text_encoder=create_identity("none", 10), num_train=len(train), num_labels=10, text_dim=10,
                        image_kind="features", text_kind="features", device=torch.device("cpu"))
    torch.manual_seed(0)
    method = SPEC.create(setup)
    method.normalise.fit(train)
    return method, train


def _pre_tanh_std(net, normalise, raw, modality) -> float:
    with torch.no_grad():
        net.eval()
        encoder, head = net[0], net[1]  # head: Linear, ReLU, Dropout, Linear (the hash layer), Tanh
        return float(head[:-1](encoder(normalise(raw, modality))).std())


def test_daph_hash_layers_do_not_saturate_on_wikipedia_features(wiki_home):
    """The official N(0, 0.3²) hash layer gives a pre-tanh std of about 8 on standardised dense
    features (80 % of tanh units saturated); ours starts at the official scale on bags of words,
    about 0.7. Measured here: 0.66 (SIFT image side), 0.72 (LDA text side); 0.3 gives 8.4 / 8.3."""
    method, train = _daph_on_wiki(wiki_home)
    images = torch.cat([b.images for b in train.batches(4096, modalities=("image",))])
    texts = torch.cat([b.texts for b in train.batches(4096, modalities=("text",))])
    image_std = _pre_tanh_std(method.image_net, method.normalise, images, "image")
    text_std = _pre_tanh_std(method.text_net, method.normalise, texts, "text")
    assert 0.3 < image_std < 3 and 0.3 < text_std < 3, (image_std, text_std)
    # the test can fail: with the official scale the same measurement exceeds 3
    with torch.no_grad():
        torch.nn.init.normal_(method.text_net[1][3].weight, 0.0, 0.3)
    assert _pre_tanh_std(method.text_net, method.normalise, texts, "text") > 3


def _release_blocks():
    """The release's arrays and labels (class indices 1-10), read independently of cmhbench."""
    import scipy.io

    mat = scipy.io.loadmat(shared_data("wiki") / "raw_features.mat")
    cats = {name: np.array([int(line.split("\t")[2]) for line in (shared_data("wiki") / name).read_text().splitlines()
                            if line.strip()])
            for name in ("trainset_txt_img_cat.list", "testset_txt_img_cat.list")}
    return {"I_tr": mat["I_tr"], "I_te": mat["I_te"], "T_tr": mat["T_tr"], "T_te": mat["T_te"],
            "L_tr": cats["trainset_txt_img_cat.list"], "L_te": cats["testset_txt_img_cat.list"]}


@pytest.mark.parametrize("variant", ["v5-indices", "v5-onehot-transposed", "v73-onehot", "npz-zero-based"])
def test_single_file_versions_give_the_release_canonical_data(variant, wiki_home, tmp_path):
    """The single-file Wikipedia versions (I_tr/I_te/T_tr/T_te/L_tr/L_te; MATLAB v5 or v7.3, either
    orientation, labels as class indices or one-hot) prepare to exactly the release's canonical
    arrays: the same content digest."""
    import scipy.io

    blocks = _release_blocks()
    if "onehot" in variant:
        blocks["L_tr"], blocks["L_te"] = (np.eye(10, dtype=np.uint8)[blocks[k] - 1] for k in ("L_tr", "L_te"))
    if "transposed" in variant:
        blocks = {k: v.T if v.ndim == 2 else v for k, v in blocks.items()}
    if variant == "v5-indices" or variant == "v5-onehot-transposed":
        path = tmp_path / "wikiData.mat"
        scipy.io.savemat(path, {k: (v[:, None] if v.ndim == 1 else v) for k, v in blocks.items()})
    elif variant == "v73-onehot":  # MATLAB v7.3: HDF5 with a 512-byte user block, arrays stored transposed
        from test_prepare import write_matlab_v73

        path = tmp_path / "wiki_data.mat"
        write_matlab_v73(path, blocks)
    else:
        path = tmp_path / "wiki.npz"
        np.savez(path, **{k: (v - 1 if k.startswith("L_") else v) for k, v in blocks.items()})
    home = tmp_path / "home"
    result = run_cli("data", "prepare", "wiki", "--source", str(path), env={"CMHBENCH_HOME": str(home), "COLUMNS": "300"})
    assert result.returncode == 0, result.stderr
    single = load_canonical(home / "prepared" / "wiki.h5")
    release = load_canonical(wiki_home / "prepared" / "wiki.h5")
    assert single.content_sha256 == release.content_sha256


def test_a_single_file_without_the_wikipedia_keys_names_them(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, X=np.zeros((3, 2)))
    result = run_cli("data", "prepare", "wiki", "--source", str(path),
                     env={"CMHBENCH_HOME": str(tmp_path / "home"), "COLUMNS": "300"})
    assert result.returncode == 1
    assert "missing key(s) I_tr, I_te, T_tr, T_te, L_tr, L_te" in " ".join(result.stderr.split())
