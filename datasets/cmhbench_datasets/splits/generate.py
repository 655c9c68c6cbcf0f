"""How the shipped split files were produced, once (2026-11-23). Never run at run time.

For each standard dataset and item count of its standard files: a seeded permutation of the item
order; the first `query` items are the queries, the next `train` items (drawn from the rest, which
is the retrieval set) are the training set. Items without labels are removed at prepare time.

    python datasets/cmhbench_datasets/splits/generate.py
"""

import json
from pathlib import Path

import numpy as np

SEED = 2026
SPLITS = {  # name: (item count of the standard files, queries, training items)
    "mirflickr": (20015, 2000, 10000),
    "nuswide": (195834, 2100, 10500),
    "iapr": (20000, 2000, 10000),
    "coco": (122218, 5000, 10000),
}

if __name__ == "__main__":
    here = Path(__file__).parent
    for name, (n, query, train) in SPLITS.items():
        order = np.random.default_rng(SEED).permutation(n)
        record = {
            "dataset": name, "num_items": n, "seed": SEED,
            "generator": "numpy.random.default_rng(seed).permutation(num_items): queries first, then train",
            "query": sorted(order[:query].tolist()),
            "train": sorted(order[query:query + train].tolist()),
        }
        (here / f"{name}-{n}.json").write_text(json.dumps(record, separators=(",", ":")) + "\n")
