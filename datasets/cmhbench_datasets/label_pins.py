"""The canonical labels of the built-in datasets, per split, as digests (cmhbench.results.label_pins).

Standard datasets: the digest of each split's labels in the canonical preparation, by the profile
version (the first field of the prepared version: a layout read in the standard item order does not
change the labels). A layout that carries its own split (DAPH's split file, UCMFH's split files)
gives other splits: its pins are listed under "VERSION:LAYOUT", and until they are, such a
preparation of a pinned dataset is refused like any unknown version. Only
preparations made here from the real files are listed; the others are unknown until someone with
the files adds them (`cmhbench data info NAME` prints them). Toy: generated, so computed.
"""

from __future__ import annotations

from typing import Any, Mapping

from cmhbench.errors import CmhbenchError

CANONICAL: dict[str, dict[str, dict[str, str]]] = {
    # from ../shared/data/wiki (the UCSD release), tests/test_label_pins.py prepares it again
    "wiki": {"1": {"query": "50e2018a50f279c681980da983ca324a1bff356b4e348811cd4006960c639632",
                   "retrieval": "95162656a3a3fa70c28baf57556dc2dea814d871fc3e567d19e871d2e6321fbd"}},
}


#: the layouts whose files carry a split of their own (cmhbench.data.layouts)
OWN_SPLIT_LAYOUTS = ("split", "split-files")

#: the largest toy whose labels the board regenerates to check a result (the defaults are 1,000 items)
MAX_TOY_ITEMS = 20_000


def standard_pins(name: str, version: str, options: Mapping[str, Any]) -> dict[str, str] | None:
    """The canonical digests, None where no preparation of this dataset is known here; a version
    this cmhbench does not prepare is refused (a forger could not then name one to escape the pin)."""
    known = CANONICAL.get(name)
    if not known:
        return None
    fields = str(version).split(":")
    profile_version = fields[0]
    if len(fields) > 1 and fields[1] in OWN_SPLIT_LAYOUTS:
        profile_version = f"{fields[0]}:{fields[1]}"
    if profile_version not in known:
        raise CmhbenchError(f"dataset {name} version {str(version)[:40]!r} is not one this cmhbench prepares "
                            f"(versions {', '.join(sorted(known))}): its labels cannot be checked")
    return known[profile_version]


def toy_pins(version: str, options: Mapping[str, Any]) -> dict[str, str]:
    """The toy's labels for these options, from the (cached) generated set; a version this generator
    does not give, or a toy too large to regenerate for a check, is refused."""
    from cmhbench.evaluation.scoring import labels_digest
    from cmhbench_datasets.toy import open_toy, parse_options

    params = parse_options(options)
    if not 0 < params["size"] <= MAX_TOY_ITEMS or not 0 < params["image_size"] <= 64:
        raise CmhbenchError(f"toy options {dict(options)}: the board regenerates toys of at most {MAX_TOY_ITEMS:,} "
                            "items and 64 px to check their labels")
    dataset = open_toy(options)
    if dataset.version != version:
        raise CmhbenchError(f"toy version {str(version)[:40]!r} is not what this generator gives for "
                            f"{dict(options)} ({dataset.version}): its labels cannot be checked")
    return {split: labels_digest(dataset.labels[dataset.splits[split]]) for split in ("query", "retrieval")}
