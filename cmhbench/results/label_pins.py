"""The canonical labels of standard datasets, pinned by digest per split.

A result pins the labels it was scored against (``dataset.labels_sha256``), but a forger could edit
both. So the dataset plugins say what each split's labels are in the canonical preparation
(`DatasetSpec.label_pins(version, options)`: a digest per split, or None where unknown), and codes
scored against other labels are refused.
"""

from __future__ import annotations

from typing import Any, Mapping


def pinned_label_digests(dataset: Mapping[str, Any]) -> dict[str, str] | None:
    """The canonical digest of each split's labels for this dataset block of a result, or None where
    no installed plugin knows them (a dataset of one's own, a standard one no one has pinned yet, or no
    plugins loadable). Raises CmhbenchError where the plugin refuses the block's version or options."""
    try:
        from cmhbench.plugins.registry import get_registry

        spec = get_registry().dataset(dataset["name"])
    except Exception:  # an unknown dataset or a broken plugin environment: nothing is pinned
        return None
    if spec.label_pins is None:
        return None
    pins = spec.label_pins(str(dataset.get("version")), dict(dataset.get("options") or {}))
    return dict(pins) if pins else None
