"""Codes of every built-in method on toy and on the real Wikipedia release (seed 0, 32 bits, each
dataset's protocol under a short epoch budget), bit-packed into one npz file.

``test_reference_codes.py`` runs this script on the main of before the method-API refactor and on
today's tree, side by side, and compares. Run as ``python make_reference_codes.py OUT.npz
WIKI_FOLDER`` in a fresh ``CMHBENCH_HOME`` (the toy backbone's pretraining is part of what is
compared). One intra-op thread, so that the float summation order is the machine's, not the
thread count's."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

METHODS = ("dcmh", "ssah", "daph", "cvh", "scm-orth", "scm-seq", "cmfh")
DATASETS = ("toy", "wiki")
BITS, SEED, EPOCHS = 32, 0, 2


def environment() -> dict[str, str]:
    """What bit-identity depends on besides the code: the same torch build on the same kind of CPU."""
    return {"torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "numpy": np.__version__}


def main(out: str, wiki_folder: str) -> None:
    torch.set_num_threads(1)
    from cmhbench.data.prepare import prepare
    from cmhbench.runner import RunRequest, run
    from cmhbench_datasets.standard import PROFILES

    prepare(PROFILES["wiki"], [Path(wiki_folder)])
    arrays = {}
    with tempfile.TemporaryDirectory() as results:
        for dataset in DATASETS:
            for method in METHODS:
                outcome = run(RunRequest(method=method, dataset=dataset, bits=BITS, seed=SEED, epochs=EPOCHS,
                                         device="cpu", results_dir=results, quiet=True))
                for split, by_modality in outcome.trained.codes.items():
                    for modality, codes in by_modality.items():
                        arrays[f"{dataset}/{method}/{split}/{modality}"] = np.packbits(codes > 0, axis=1)
                print(dataset, method, "done", flush=True)
    arrays["environment"] = np.array(json.dumps(environment()))
    np.savez_compressed(out, **arrays)


if __name__ == "__main__":
    main(*sys.argv[1:])
