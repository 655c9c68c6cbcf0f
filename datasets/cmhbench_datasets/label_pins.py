"""The canonical labels of the built-in datasets, per split, as digests (cmhbench.results.label_pins).

Standard datasets: the digest of each split's labels in the canonical preparation, by the profile
version (the first field of the prepared version: the layout read does not change the labels). Only
preparations made here from the real files are listed; the others are unknown until someone with
the files adds them (`cmhbench data info NAME` prints them). Toy: generated, so computed.
"""

from __future__ import annotations

from typing import Any, Mapping

CANONICAL: dict[str, dict[str, dict[str, str]]] = {
    # from ../shared/data/wiki (the UCSD release), tests/test_label_pins.py prepares it again
    "wiki": {"1": {"query": "50e2018a50f279c681980da983ca324a1bff356b4e348811cd4006960c639632",
                   "retrieval": "95162656a3a3fa70c28baf57556dc2dea814d871fc3e567d19e871d2e6321fbd"}},
}


def standard_pins(name: str, version: str, options: Mapping[str, Any]) -> dict[str, str] | None:
    return CANONICAL.get(name, {}).get(version.split(":")[0])


def toy_pins(version: str, options: Mapping[str, Any]) -> dict[str, str] | None:
    """The toy's labels for these options, from the (cached) generated set; None where this
    generator would not give that version."""
    from cmhbench.evaluation.scoring import labels_digest
    from cmhbench_datasets.toy import open_toy

    dataset = open_toy(options)
    if dataset.version != version:
        return None
    return {split: labels_digest(dataset.labels[dataset.splits[split]]) for split in ("query", "retrieval")}
