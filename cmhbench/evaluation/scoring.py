"""Scoring a run's codes: the one function the runner, `rescore`, `submit` and the board call, so
that a stored result and its re-scoring cannot drift apart.

``EVALUATOR_VERSION`` names the metric set and definitions; a result records the version it was
scored with, and `cmhbench rescore` brings stored codes up to the current one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from cmhbench.data.digest import array_digest
from cmhbench.evaluation.collapse import code_statistics
from cmhbench.evaluation.directions import DIRECTIONS
from cmhbench.evaluation.evaluator import evaluate_directions
from cmhbench.evaluation.inputs import to_numpy
from cmhbench.evaluation.variants import VARIANTS, variant_scores

#: 1: the metrics up to issue 24 (mAP, tie-aware mAP, mAP@K, P@K, PR by radius, lookup, chance);
#: 2: and the papers' own mAP variants (``metrics[direction]["variants"]``)
EVALUATOR_VERSION = 2


def score_codes(query_codes: Mapping[str, Any], retrieval_codes: Mapping[str, Any], query_labels: np.ndarray,
                retrieval_labels: np.ndarray, directions: Sequence[str],
                device: str | torch.device | None = None) -> dict[str, dict[str, Any]]:
    """Every metric of every direction: the evaluator's set and the papers' variants."""
    metrics = evaluate_directions(query_codes, retrieval_codes, query_labels, retrieval_labels,
                                  directions=directions, device=device)
    # every variant but dcmh_map needs a sort of its own (dcmh_map: the evaluator's ranking)
    sorting_variants = [name for name in VARIANTS if name != "dcmh_map"]
    for direction in directions:
        source, target = DIRECTIONS[direction]
        # variant_scores checks and converts its inputs itself (tensors included)
        scores = variant_scores(query_codes[source], retrieval_codes[target], query_labels, retrieval_labels,
                                names=sorting_variants)
        scores["dcmh_map"] = dcmh_map_of(metrics[direction])
        # TwDH's code gives NaN where a query has no relevant item: that variant is then undefined
        metrics[direction]["variants"] = {name: scores[name] for name in VARIANTS
                                          if name in scores and math.isfinite(scores[name])}
    return metrics


def dcmh_map_of(metrics: Mapping[str, Any]) -> float:
    """DCMH's MATLAB mAP from the evaluator's own: the same ranking (stable ties) and APs, over every
    query instead of those with a relevant item; spares the variant its sort (the costliest part of
    scoring a small set)."""
    with_relevant = metrics["num_queries"] - metrics["queries_without_relevant"]
    return metrics["map"] * with_relevant / metrics["num_queries"]


def derived_fields(query_codes: Mapping[str, Any], retrieval_codes: Mapping[str, Any], query_labels: np.ndarray,
                   retrieval_labels: np.ndarray, directions: Sequence[str],
                   device: str | torch.device | None = None) -> dict[str, Any]:
    """What a result derives from its codes and labels: metrics, the code statistics and the
    evaluator version (never read back from a file: recomputed wherever a result is shown)."""
    codes = {"query": {m: to_numpy(c, f"query {m} codes") for m, c in query_codes.items()},
             "retrieval": {m: to_numpy(c, f"retrieval {m} codes") for m, c in retrieval_codes.items()}}
    return {"metrics": score_codes(query_codes, retrieval_codes, query_labels, retrieval_labels, directions, device),
            "codes": code_statistics(codes, {"query": query_labels, "retrieval": retrieval_labels}),
            "evaluator": {"version": EVALUATOR_VERSION}}


def labels_digest(labels: np.ndarray) -> str:
    """The digest that pins the labels a split was scored against (multi-hot uint8, in split order)."""
    return array_digest(np.ascontiguousarray(labels, dtype=np.uint8))

