"""Our DCHMT, MITH and DSPH on the data the authors' code is run on, for the side-by-side of issue 26.

The authors' code (kalenforn/DCHMT, DarrenZZhang/MM23-MITH, QinLab-WFU/DSPH, patched only for the CPU
and data paths, never committed) trains on the toy's 1,000 pairs written in their file format: 32-px PNG images,
captions, labels; MITH's split (numpy seed 1: 100 queries, 500 training items); a tiny random CLIP
saved in OpenAI's state-dict format. This script builds the same data as a canonical file (the toy's
arrays and captions, the same split) and runs ours from the same weights file, rounded to fp16 where
both releases' ``build_model`` rounds it (``convert_weights``: linear, convolution and attention
weights, the projections), at the same schedule: 32 bits, 120 epochs, batches of 64, CLIP and heads
at 1e-3 (the toy's ``quick`` presets), seeds 0, 1, 2.

    python benchmarks/side_by_side.py WEIGHTS.pt [--methods dchmt,mith,dsph] [--seeds 0,1,2] [--out DIR]

prints one line per run (final-epoch mAP under ``dchmt_map``, the releases' metric) and the mean.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np
import torch


def fp16_rounded_weights(path: Path, out: Path) -> Path:
    """The weights as the releases load them: open_clip's convert_weights_to_lp is their convert_weights."""
    from open_clip.model import convert_weights_to_lp

    from cmhbench.encoders.clip import load_clip

    model = load_clip("clip-tiny", str(path))
    convert_weights_to_lp(model, dtype=torch.float16)
    torch.save(model.float().state_dict(), out)
    return out


def canonical_file(folder: Path) -> Path:
    from cmhbench.data import write_canonical
    from cmhbench_datasets.dchmt_files import dchmt_split
    from cmhbench_datasets.toy import LABEL_NAMES, captions_from_words, generate

    arrays = generate(size=1000, image_size=32, vocabulary=400, seed=0)
    split = dchmt_split(100, 500)(1000)
    query = np.sort(split["query"])
    return write_canonical(
        folder / "side-by-side.h5", images=arrays["images"], texts=None, captions=captions_from_words(arrays["texts"]),
        labels=arrays["labels"], splits={"query": query, "retrieval": np.setdiff1d(np.arange(1000), query),
                                         "train": np.sort(split["train"])},
        name="side-by-side", version="1", label_names=LABEL_NAMES, source_sha256={}, image_kind="pixels",
        text_kind="captions")


def registry_with(path: Path):
    from cmhbench.data import load_canonical
    from cmhbench.plugins import hookimpl
    from cmhbench.plugins.registry import build_registry
    from cmhbench.specs import DatasetSpec, Protocol

    class SideBySide:
        @hookimpl
        def cmhbench_register_datasets(self):
            return [DatasetSpec(name="side-by-side", description="the toy in the DCHMT files", citation=None,
                                protocol=Protocol(name="side-by-side", version=1, bits=(32,), clip_encoder="clip-tiny"),
                                open=lambda options: load_canonical(path))]

    return build_registry(extra_plugins=[("side-by-side", SideBySide())])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("weights", type=Path)
    parser.add_argument("--methods", default="dchmt,mith,dsph")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", type=Path, default=Path("side-by-side"))
    args = parser.parse_args()
    from cmhbench.request import RunRequest
    from cmhbench.runner import run

    args.out.mkdir(parents=True, exist_ok=True)
    weights = fp16_rounded_weights(args.weights, args.out / "weights-fp16-rounded.pt")
    registry = registry_with(canonical_file(args.out))
    table = {}
    for method in args.methods.split(","):
        for seed in map(int, args.seeds.split(",")):
            outcome = run(RunRequest(method=method, dataset="side-by-side", bits=32, seed=seed, epochs=120,
                                     preset="quick", image_weights=str(weights), device="cpu", quiet=True,
                                     results_dir=args.out / "results"), registry)
            scores = [outcome.result["metrics"][d]["variants"]["dchmt_map"] for d in ("i2t", "t2i")]
            table.setdefault(method, []).append(scores)
            print(f"{method} seed {seed}: i2t {scores[0]:.4f} t2i {scores[1]:.4f} "
                  f"(train {outcome.result['timings']['train_seconds']:.0f} s)", flush=True)
    for method, rows in table.items():
        means = [statistics.mean(r[i] for r in rows) for i in (0, 1)]
        spreads = [statistics.stdev(r[i] for r in rows) if len(rows) > 1 else 0.0 for i in (0, 1)]
        print(f"{method} mean: i2t {means[0]:.4f} ± {spreads[0]:.4f}, t2i {means[1]:.4f} ± {spreads[1]:.4f}")
    (args.out / "side-by-side.json").write_text(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
