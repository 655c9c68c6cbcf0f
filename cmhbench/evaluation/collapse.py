"""The collapse diagnostic: how many distinct codes a method gave, and whether most coincide.

A collapsed run (most items sharing one code) scores about the label prior whatever its losses
said; the diagnostic is recorded in every result so that such a run is visible, and the leaderboard
marks it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np


def code_statistics(codes: Mapping[str, Mapping[str, np.ndarray]], labels_by_split: Mapping[str, np.ndarray]
                    ) -> dict[str, Any]:
    """A collapse diagnostic per split and modality: distinct codes, the share of items holding
    the most common code (beside the share of the most common label set, its natural floor) and
    the fraction of +1 per bit. ``labels_by_split`` holds each split's labels in split order."""
    out: dict[str, Any] = {}
    for split, by_modality in codes.items():
        labels = labels_by_split[split]
        _, label_counts = np.unique(labels, axis=0, return_counts=True)
        top_label_share = float(label_counts.max() / len(labels))
        out[split] = {"top_label_set_share": top_label_share}
        for modality, array in by_modality.items():
            _, counts = np.unique(array, axis=0, return_counts=True)
            top_share = float(counts.max() / len(array))
            out[split][modality] = {
                "distinct": len(counts), "items": len(array), "top_code_share": top_share,
                "bit_balance": [round(float(v), 4) for v in (array > 0).mean(0)],
                "collapsed": bool(is_collapsed(top_share, top_label_share)),
            }
    return out


def is_collapsed(top_code_share: float, top_label_set_share: float) -> bool:
    """Most codes coincide: over half of the items share one code, and far more than share the
    most common label set (a perfect code for single-label data gives each class one code)."""
    return top_code_share > 0.5 and top_code_share > 1.5 * top_label_set_share
