"""The fixed protocol splits shipped as package data (see splits/generate.py for their origin)."""

from __future__ import annotations

import json
from importlib import resources

import numpy as np

from cmhbench.errors import CmhbenchError


def fixed_split(name: str):
    """A loader for ``name``'s split file matching the item count of the user's files."""

    def load(num_items: int) -> dict[str, np.ndarray]:
        folder = resources.files("cmhbench_datasets") / "splits"
        filename = f"{name}-{num_items}.json"
        entry = folder / filename
        if not entry.is_file():
            known = sorted(p.name for p in folder.iterdir() if p.name.startswith(f"{name}-"))
            raise CmhbenchError(f"no fixed split for {name} with {num_items} items; shipped: {', '.join(known)}")
        record = json.loads(entry.read_text())
        return {"query": np.asarray(record["query"], dtype=np.int64),
                "train": np.asarray(record["train"], dtype=np.int64)}

    return load
