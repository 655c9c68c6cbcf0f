"""The standard cross-modal hashing benchmarks: profiles of their circulated files and protocols."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path

from cmhbench.data.layouts import Items, load_items
from cmhbench.data.prepare import DatasetProfile, open_prepared
from cmhbench.specs import Citation, DatasetSpec, Protocol
from cmhbench_datasets import dchmt_files, image_list, wiki
from cmhbench_datasets.label_pins import standard_pins
from cmhbench_datasets.split_files import fixed_split

MIRFLICKR_LABELS = ("animals", "baby", "bird", "car", "clouds", "dog", "female", "flower", "food", "indoor",
                    "lake", "male", "night", "people", "plant_life", "portrait", "river", "sea", "sky",
                    "structures", "sunset", "transport", "tree", "water")
ARRAY_LAYOUTS = ("MATLAB v5 or v7.3 / HDF5 / .npz files with images (images, IAll; N×H×W×3, N×3×H×W or "
                 "MATLAB's H×W×3×N, several files allowed), texts (YAll, tags) and labels (LAll, labels; "
                 "multi-hot or class indices); precomputed image features in place of images; DAPH's "
                 "already-split HDF5 (train_data/train_y/train_L, test_*, data_set/dataset_y/dataset_L); one file "
                 "per split (query, retrieval or database, train), as UCMFH's CLIP-feature pickles "
                 "(train.pkl/query.pkl/retrieval.pkl: image, text, label)")


def _mirflickr_reader(sources: Sequence[str | Path], orientation: str = "auto") -> Items:
    """The image-list layout when its text files are among the sources, else the array layouts."""
    listed = any(Path(s).name in image_list.LIST_FILES or (Path(s).is_dir() and (Path(s) / "all_imgs.txt").exists())
                 for s in sources)
    if listed:
        return image_list.read_image_list(sources, num_labels=24)
    return load_items(sources, counts=(20015,), num_labels=24, orientation=orientation)


def _dchmt_profile(name: str, title: str, count: int, num_labels: int, query: int, train: int,
                   where: str) -> DatasetProfile:
    """A DCHMT-format item set: a dataset of its own (its cleaning is not the DCMH lineage's), version
    "dchmt", MITH's split."""
    return DatasetProfile(
        name=name, title=title, counts=(count,), num_labels=num_labels, query=query, train=train, version="dchmt",
        fixed_split=dchmt_files.dchmt_split(query, train),
        reader=partial(dchmt_files.read_dchmt_files, num_labels=num_labels, counts=(count,)),
        where_to_get=where,
        accepts="the DCHMT/MITH files: index.mat, caption.mat (NUS-WIDE: caption.txt) and label.mat (MATLAB v5 "
                "as their make_*.py write them, or v7.3), and the image folder (the folder holding them all, or each)")


def _open(name: str, options) -> object:
    return open_prepared(name)


def _spec(profile: DatasetProfile, description: str, citation: Citation, bits=(16, 32, 64), version: int = 1,
          preset: str | None = None) -> DatasetSpec:
    return DatasetSpec(name=profile.name, description=description, citation=citation,
                       protocol=Protocol(name=profile.name, version=version, bits=tuple(bits), seeds=(0, 1, 2),
                                         image_weights="imagenet", preset=preset),
                       open=partial(_open, profile.name), profile=profile,
                       label_pins=partial(standard_pins, profile.name))


PROFILES = {
    "mirflickr": DatasetProfile(
        name="mirflickr", title="MIRFLICKR-25K (cleaned, 24 labels)", counts=(20015,), num_labels=24,
        query=2000, train=10000, label_names=MIRFLICKR_LABELS, fixed_split=fixed_split("mirflickr"),
        reader=_mirflickr_reader,
        where_to_get="https://press.liacs.nl/mirflickr/ (images); the cleaned 20,015-pair set with 1,386-d tag "
                     "BoW circulates as DCMH's FLICKR-25K.mat and as all_imgs/all_labels/all_tags.txt",
        accepts=ARRAY_LAYOUTS + "; or the image folder with all_imgs.txt, all_labels.txt, all_tags.txt"),
    "nuswide": DatasetProfile(
        name="nuswide", title="NUS-WIDE (21 most frequent concepts)", counts=(195834,), num_labels=21,
        query=2100, train=10500, fixed_split=fixed_split("nuswide"),
        where_to_get="https://lms.comp.nus.edu.sg/wp-content/uploads/2019/research/nuswide/NUS-WIDE.html; the "
                     "21-concept 195,834-pair subset with 1,000-d tag BoW circulates with the DCMH release",
        accepts=ARRAY_LAYOUTS),
    "iapr": DatasetProfile(
        name="iapr", title="IAPR TC-12 (255 labels)", counts=(20000,), num_labels=255,
        query=2000, train=10000, fixed_split=fixed_split("iapr"),
        where_to_get="https://www.imageclef.org/photodata; the 20,000-pair set with 2,912-d (DCMH release) or "
                     "2,000-d (DAPH release) BoW",
        accepts=ARRAY_LAYOUTS),
    "coco": DatasetProfile(
        name="coco", title="MS-COCO (80 categories)", counts=(122218,), num_labels=80,
        query=5000, train=10000, fixed_split=fixed_split("coco"),
        where_to_get="https://cocodataset.org (train2014 + val2014, images without categories removed: "
                     "122,218 pairs) with 2,000-d caption BoW",
        accepts=ARRAY_LAYOUTS),
    "wiki": DatasetProfile(
        name="wiki", title="Wikipedia (10 categories, single label)", counts=(2866,), num_labels=10,
        query=693, train=2173, label_names=wiki.CATEGORIES, reader=wiki.read_release,
        where_to_get="http://www.svcl.ucsd.edu/projects/crossmodal/ (wikipedia_dataset: raw_features.mat and "
                     "the two .list files)",
        accepts="the original release: raw_features.mat, trainset_txt_img_cat.list, testset_txt_img_cat.list "
                "(the folder or the three files); or one file of the single-file versions that circulate with code "
                "releases (MTFH's wikiData.mat, SCRATCH's wiki_data.mat, ...): I_tr, I_te, T_tr, T_te, L_tr, L_te in "
                "MATLAB v5 or v7.3, HDF5 or .npz, arrays items-first or items-last, labels one-hot or class indices"),
}

# The item sets the CLIP-era methods use, in the files their releases build (kalenforn/DCHMT
# dataset/make_*.py, DarrenZZhang/MM23-MITH dataset/*/make_*.py); counts and split sizes are MITH's.
DCHMT_PROFILES = {
    "mirflickr-dchmt": _dchmt_profile(
        "mirflickr-dchmt", "MIRFLICKR-25K, DCHMT/MITH files (20,015 pairs, 24 labels, tag captions)", 20015, 24,
        2000, 10000, "https://press.liacs.nl/mirflickr/ images; the .mat files from DCHMT's or MITH's make_mirflickr25k.py "
                     "(MITH's README links its cleaned copy)"),
    "nuswide-dchmt": _dchmt_profile(
        "nuswide-dchmt", "NUS-WIDE, DCHMT/MITH files (190,421 pairs, 21 concepts, tag captions)", 190421, 21,
        2100, 10500, "NUS-WIDE images; the files from DCHMT's or MITH's make_nuswide.py (a cleaning other than the "
                     "DCMH lineage's 195,834 pairs)"),
    "coco-dchmt": _dchmt_profile(
        "coco-dchmt", "MS-COCO, DCHMT/MITH files (122,218 pairs, 80 categories, one caption each)", 122218, 80,
        5000, 10000, "https://cocodataset.org train and val images; the files from DCHMT's make_coco.py or MITH's"),
}
PROFILES.update(DCHMT_PROFILES)


SPECS = [
    _spec(PROFILES["mirflickr"], "MIRFLICKR-25K: 20,015 Flickr images with tags, 24 labels",
          Citation("The MIR Flickr Retrieval Evaluation", "ACM MIR", 2008, "Huiskes, Lew")),
    _spec(PROFILES["nuswide"], "NUS-WIDE: 195,834 Flickr images, 21 concepts, 1,000-d tags",
          Citation("NUS-WIDE: A Real-World Web Image Database from National University of Singapore",
                   "ACM CIVR", 2009, "Chua et al.")),
    _spec(PROFILES["iapr"], "IAPR TC-12: 20,000 images with sentences, 255 labels",
          Citation("The IAPR TC-12 Benchmark: A New Evaluation Resource for Visual Information Systems",
                   "LREC workshop OntoImage", 2006, "Grubinger, Clough, Müller, Deselaers")),
    _spec(PROFILES["coco"], "MS-COCO: ~122k images with captions, 80 categories",
          Citation("Microsoft COCO: Common Objects in Context", "ECCV", 2014, "Lin et al.")),
    _spec(PROFILES["wiki"], "Wikipedia: 2,866 SIFT/LDA feature pairs, 10 categories",
          Citation("A New Approach to Cross-Modal Multimedia Retrieval", "ACM MM", 2010, "Rasiwasia et al."),
          # v2: a method's "features" preset applies (DCMH: rates for feature inputs, see its FEATURE_INPUTS);
          # published schedules otherwise
          bits=(16, 32, 64), version=2, preset="features"),
    # caption datasets: CLIP methods run with OpenAI's weights (Protocol.clip_weights, ~/.cache/clip)
    _spec(DCHMT_PROFILES["mirflickr-dchmt"], "MIRFLICKR-25K in the DCHMT/MITH files: images and tag captions",
          Citation("The MIR Flickr Retrieval Evaluation", "ACM MIR", 2008, "Huiskes, Lew")),
    _spec(DCHMT_PROFILES["nuswide-dchmt"], "NUS-WIDE in the DCHMT/MITH files: images and tag captions",
          Citation("NUS-WIDE: A Real-World Web Image Database from National University of Singapore",
                   "ACM CIVR", 2009, "Chua et al.")),
    # DCHMT's README gives MS-COCO settings of its own (its `coco` preset), applied here
    _spec(DCHMT_PROFILES["coco-dchmt"], "MS-COCO in the DCHMT/MITH files: images and one caption each",
          Citation("Microsoft COCO: Common Objects in Context", "ECCV", 2014, "Lin et al."), preset="coco"),
]
