"""`cmhbench submit`: codes produced outside cmhbench (the authors' own code, run on our fixed
splits) become a result, scored by the same evaluator and shown on the board as outside codes.

The codes file is the stored-codes layout (cmhbench.results.codes_file) without labels: ``bits``;
``query_image``/``query_text``/``retrieval_image``/``retrieval_text`` packed with
``numpy.packbits(codes > 0, axis=1)`` (at least one modality per split); ``query_ids`` and
``retrieval_ids``, the dataset's item indices of each code row (`cmhbench data splits NAME` writes
them). The ids must be exactly the split's items (any order); the labels come from the dataset.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from cmhbench.data.untrusted import read_npz
from cmhbench.errors import CmhbenchError
from cmhbench.evaluation.directions import DIRECTIONS, check_directions
from cmhbench.request import check_seed
from cmhbench.results import ResultStore, RunResult, compute_run_id, content_digest, run_definition
from cmhbench.results.codes_file import MODALITIES, SPLITS, StoredCodes, codes_path, file_sha256, write_codes

NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
OUTSIDE_ENCODER = {"name": "outside", "weights": "none"}


def submit(codes_file: str | Path, dataset: str, name: str, *, paper: str | None = None,
           code_url: str | None = None, seed: int = 0, dataset_options: Mapping[str, Any] | None = None,
           directions: Sequence[str] | None = None, results_dir: str | Path = "results",
           force: bool = False) -> tuple[Path, RunResult]:
    from cmhbench.evaluation.scoring import derived_fields, labels_digest
    from cmhbench.plugins.registry import get_registry
    from cmhbench.results import provenance
    from cmhbench.runner import open_dataset

    codes_file = Path(codes_file)
    _check_name_and_links(name, paper, code_url)
    check_seed(seed, "--seed")
    spec = get_registry().dataset(dataset)
    data = open_dataset(spec, dict(dataset_options or {}))
    stored = read_submission(codes_file, data.splits, data.labels)
    directions = _directions(stored, directions, codes_file)
    origin = {"kind": "outside", "name": name, "paper": paper, "code_url": code_url}
    describe = {**data.describe(), "options": dict(dataset_options or {})}
    definition = run_definition(method=name, hyperparameters={}, preset=None, dataset=describe,
                                protocol=spec.protocol.as_dict(), bits=stored.bits, seed=seed, epoch_override=None,
                                encoders={"image": OUTSIDE_ENCODER, "text": OUTSIDE_ENCODER}, directions=directions,
                                origin=origin)
    run_id = compute_run_id(definition)
    store = ResultStore(results_dir)
    path = store.result_path(definition, run_id)
    # one submission per name, seed and code length, whatever links it gave: two would be one board sample
    earlier = _submitted_before(path.parent, stored.bits, seed, describe)
    if earlier and not force:
        raise CmhbenchError(f"{earlier[0]} exists: codes named {name} (seed {seed}, {stored.bits} bits) were "
                            "submitted before; give another --seed for another run, or --force to replace them")
    derived = derived_fields(stored.codes["query"], stored.codes["retrieval"], stored.labels["query"],
                             stored.labels["retrieval"], directions, "cpu")
    record = write_codes(codes_path(path), stored)
    import torch

    result = RunResult(
        run_id=run_id, method={"name": name, "description": "codes submitted from outside cmhbench",
                               "citation": paper or "", "plugin": "outside", "hyperparameters": {}, "preset": None},
        dataset={**describe, "labels_sha256": {s: labels_digest(stored.labels[s]) for s in SPLITS}},
        protocol=spec.protocol.as_dict(), bits=stored.bits, seed=seed, epoch_override=None, origin=origin,
        encoders={"image": dict(OUTSIDE_ENCODER), "text": dict(OUTSIDE_ENCODER)}, metrics=derived["metrics"],
        codes=derived["codes"], training={}, diagnostics={}, timings={}, peak_memory={}, artifacts={"submitted_file": codes_file.name, "submitted_sha256": file_sha256(codes_file)},
        codes_file=record, evaluator=derived["evaluator"], environment=provenance.environment(torch.device("cpu")),
        git_commit=provenance.git_commit(), command=provenance.command_line(), created_utc=provenance.utc_now())
    result.content_sha256 = content_digest(result.to_dict())
    try:
        store.write(path, result)
    except BaseException:
        if not path.exists():  # no result names these codes: leave nothing half-written behind
            codes_path(path).unlink(missing_ok=True)
        raise
    for replaced in earlier:  # --force: the new codes take the earlier submission's place
        if replaced != path:
            replaced.unlink(missing_ok=True)
            codes_path(replaced).unlink(missing_ok=True)
    return path, result


def _directions(stored: StoredCodes, asked: Sequence[str] | None, codes_file: Path) -> list[str]:
    """The directions asked for, each refused where the file lacks a side; by default i2t and t2i
    where the file holds both modalities, else what it can score."""
    scorable = [d for d in DIRECTIONS if _scorable(d, stored)]
    if not scorable:
        raise CmhbenchError(f"{codes_file}: no direction can be scored (i2t needs query_image and retrieval_text, "
                            "t2i query_text and retrieval_image, i2i and t2t one modality on both sides)")
    directions = list(asked or [d for d in scorable if d in ("i2t", "t2i")] or scorable)
    check_directions(directions)
    for direction in directions:
        if not _scorable(direction, stored):
            source, target = DIRECTIONS[direction]
            raise CmhbenchError(f"{codes_file}: direction {direction} needs 'query_{source}' and 'retrieval_{target}'")
    return directions


def _submitted_before(folder: Path, bits: int, seed: int, dataset: Mapping[str, Any]) -> list[Path]:
    """Result files in ``folder`` (one name's) of outside codes of the same code length, seed, dataset
    version and options."""
    found = []
    for candidate in sorted(folder.glob(f"{bits}bits-seed{seed}-*.json")):
        try:
            result = ResultStore.read(candidate)
            same = ((result.get("origin") or {}).get("kind") == "outside"
                    and result["dataset"]["version"] == dataset["version"]
                    and (result["dataset"].get("options") or {}) == dataset["options"])
        except (CmhbenchError, KeyError, TypeError, AttributeError, OSError, UnicodeDecodeError):
            same = True  # unreadable where a submission would be: replaced only with --force
        if same:
            found.append(candidate)
    return found


#: the most `data splits --with-arrays` writes: small sets (the toy) whose data has no other source
MAX_EXPORT_BYTES = 1024**3


def export_splits(dataset: str, out: str | Path, dataset_options: Mapping[str, Any] | None = None,
                  with_arrays: bool = False) -> dict[str, int]:
    """Write a dataset's fixed split ids (``query_ids``, ``retrieval_ids``, ``train_ids``) and its
    labels (and, ``with_arrays``, its images and texts) to an .npz, atomically; the split sizes."""
    from cmhbench.fsutil import atomic_path
    from cmhbench.plugins.registry import get_registry
    from cmhbench.runner import open_dataset

    data = open_dataset(get_registry().dataset(dataset), dict(dataset_options or {}))
    arrays = {"labels": data.labels, **{f"{split}_ids": ids for split, ids in data.splits.items()}}
    if with_arrays:
        texts = {} if data.texts is None else {"texts": data.texts}  # a caption-only dataset has none
        size = sum(a.size * a.dtype.itemsize for a in (data.images, *texts.values()))
        if size > MAX_EXPORT_BYTES:
            raise CmhbenchError(f"--with-arrays: {dataset}'s images and texts are {size / 1024**3:.1f} GiB; write the "
                                "splits alone and read the data from your own files")
        arrays.update(images=np.asarray(data.images), **{k: np.asarray(v) for k, v in texts.items()})
        if data.captions is not None:  # UTF-8 strings: numpy's fixed-width unicode, no pickled objects
            arrays["captions"] = np.asarray(list(data.captions), dtype=str)
    with atomic_path(Path(out)) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, **arrays)
    return {split: len(ids) for split, ids in data.splits.items()}


def read_submission(path: Path, splits: Mapping[str, np.ndarray], labels: np.ndarray) -> StoredCodes:
    """The submitted codes in split order, with the dataset's labels; refused in one line where the
    ids are not exactly a split's items."""
    from cmhbench.evaluation.files import _bits
    from cmhbench.evaluation.packing import unpack_codes

    arrays = read_npz(path, "codes file")
    if "bits" not in arrays:
        raise CmhbenchError(f"{path}: missing 'bits' (the code length of the packed codes)")
    bits = _bits(arrays["bits"], path)
    codes: dict[str, dict[str, np.ndarray]] = {}
    for split in SPLITS:
        order = _split_order(arrays, split, splits, path)
        codes[split] = {}
        for modality in MODALITIES:
            key = f"{split}_{modality}"
            if key not in arrays:
                continue
            packed = arrays[key]
            if packed.dtype != np.uint8 or packed.shape != (len(order), -(-bits // 8)):
                raise CmhbenchError(f"{path}: '{key}' is {packed.dtype} {packed.shape}; expected uint8 "
                                    f"{(len(order), -(-bits // 8))}: one row per id, packed with numpy.packbits")
            codes[split][modality] = unpack_codes(packed[order], bits)
        if not codes[split]:
            raise CmhbenchError(f"{path}: no {split} codes; expected '{split}_image' and/or '{split}_text'")
    return StoredCodes(bits, codes, {s: np.asarray(splits[s]) for s in SPLITS},
                       {s: labels[splits[s]] for s in SPLITS})


def _split_order(arrays: Mapping[str, np.ndarray], split: str, splits: Mapping[str, np.ndarray], path: Path):
    """The permutation that puts the submitted rows in the split's order."""
    key = f"{split}_ids"
    if key not in arrays:
        raise CmhbenchError(f"{path}: missing '{key}', the dataset item index of each {split} code row")
    ids = arrays[key]
    if ids.ndim != 1 or ids.dtype.kind not in "iu":
        raise CmhbenchError(f"{path}: '{key}' is {ids.dtype} with shape {ids.shape}; expected 1-d integers")
    expected = np.asarray(splits[split])
    if len(np.unique(ids)) != len(ids):
        raise CmhbenchError(f"{path}: '{key}' repeats item ids; each {split} item must appear once")
    foreign = np.setdiff1d(ids, expected)
    if foreign.size or len(ids) != len(expected):
        where = ""
        if foreign.size:
            item = int(foreign[0])
            elsewhere = [name for name, items in splits.items() if item in items]
            where = f"; item {item} is in {' and '.join(elsewhere) or 'no'} split{'s' * (len(elsewhere) > 1)}, not {split}"
        raise CmhbenchError(f"{path}: '{key}' is not the {split} split ({len(ids)} ids, the split has "
                            f"{len(expected)} items{where}): export codes for exactly its items (`cmhbench data "
                            "splits`)")
    sorter = np.argsort(ids)
    return sorter[np.searchsorted(ids, expected, sorter=sorter)]


def _scorable(direction: str, stored: StoredCodes) -> bool:
    source, target = DIRECTIONS[direction]
    return source in stored.codes["query"] and target in stored.codes["retrieval"]


def _check_name_and_links(name: str, paper: str | None, code_url: str | None) -> None:
    if not NAME.fullmatch(name):
        raise CmhbenchError(f"--name {name[:80]!r}: expected a short name of lowercase letters, digits, '.', '_' "
                            "and '-' (at most 64), e.g. dchmt-official")
    for option, url in (("--paper", paper), ("--code-url", code_url)):
        if url is not None and not re.fullmatch(r"https?://[^\s<>\"']{1,500}", url):
            raise CmhbenchError(f"{option} {url[:80]!r}: expected an http(s) address")
