"""The shared evaluator: Hamming ranking and hash lookup for codes produced anywhere.

Conventions (DESIGN.md, "Metrics"):

* relevant = shares at least one label; Hamming distance d = (K - <q, r>) / 2;
* ranking by ascending d, ties by ascending retrieval index;
* every per-query metric is averaged over the queries that have at least one relevant item in the
  retrieval set; how many had none is reported as ``queries_without_relevant``;
* mAP@K divides by the relevant items within the top K (0 for a query with none there);
* ``map_chance``: the expected AP of a uniformly random ranking for these labels, exact, averaged
  over the same queries as mAP: the chance level every mAP is read against. It is what random codes
  score with ties in random order (their expected tie-aware mAP); their index-tie-broken mAP can sit
  above it where ties are many (very short codes) and relevant items have low indices;
* precision@K, and beside it the tie-aware precision@K (its expectation under random tie order,
  exact from the per-distance counts);
* PR by radius r: precision = relevant within radius / items within radius (0 when the ball is
  empty), recall = relevant within radius / R, averaged per query over the queries with R > 0;
  and pooled over **every** (query, item) pair, queries with R = 0 included (their retrieved items
  count as retrieved and not relevant), as MATLAB's ``calcPreRecRadius``;
* hash lookup within radius 2: that precision and recall, F1 = 2PR/(P+R) (0 when both are 0), per
  query then averaged over the queries with R > 0; ``empty_queries`` counts **all** queries whose
  radius-2 ball holds nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from cmhbench.errors import CmhbenchError
from cmhbench.evaluation.directions import DIRECTIONS, check_directions
from cmhbench.evaluation.hamming import PackedScorer, TensorScorer, fused_kernels
from cmhbench.evaluation.inputs import checked_inputs, to_numpy
from cmhbench.evaluation.ranking import ChunkMetrics, harmonic_numbers

DEFAULT_MAP_AT = (50, 100, 500, 1000, 5000)
LOOKUP_RADIUS = 2
# Bytes of working memory per (query, retrieval item) pair in one chunk of the tensor path:
# distances, relevance, ranking (int64), hit counts, float64 precisions and their prefix sums.
_BYTES_PER_PAIR = 40
_CPU_CHUNK_BUDGET = 512 * 1024**2
_GPU_BUDGET_FRACTION = 0.5


def default_precision_at(num_retrieval: int) -> list[int]:
    grid = [1, 5, 10, 20, 50] + list(range(100, 1001, 100)) + [2000, 5000, 10000, 20000, 50000, 100000]
    return [k for k in grid if k <= num_retrieval]


def _chunk_size(num_queries: int, num_retrieval: int, device: torch.device, workers: int, packed: bool) -> int:
    if packed:  # the fused kernel's memory does not grow with the chunk: size it for load balance
        return max(1, -(-num_queries // (4 * workers)))
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        budget = int(free * _GPU_BUDGET_FRACTION)
    else:
        budget = _CPU_CHUNK_BUDGET // max(workers, 1)
    return max(1, min(num_queries, budget // (num_retrieval * _BYTES_PER_PAIR)))


def evaluate(
    query_codes: Any,
    retrieval_codes: Any,
    query_labels: Any,
    retrieval_labels: Any,
    *,
    map_at: Iterable[int] | None = None,
    precision_at: Iterable[int] | None = None,
    code_format: str = "pm1",
    device: str | torch.device | None = None,
    chunk_size: int | None = None,
    ranking: bool = True,
    names: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Score one direction. Pure function of its inputs; returns a plain dict (see module doc).

    ``ranking=False`` skips the index-tie-broken ranking (no sort): the result then holds only the
    metrics computed from per-distance counts (tie-aware mAP, PR by radius, hash lookup).

    ``map_at`` defaults to 50, 100, 500, 1000, 5000 where the retrieval set allows;
    ``precision_at`` to a log-spaced grid up to the retrieval size. ``device`` defaults to CUDA when
    present. ``chunk_size`` (queries per block) is sized from available memory when not given.
    ``names``: what errors call the four arrays (a file's keys), by checked_inputs' role names."""
    device = torch.device(device if device is not None else "cuda" if torch.cuda.is_available() else "cpu")
    packed = fused_kernels(device)
    query_codes = to_numpy(query_codes, "query_codes")
    bits = query_codes.shape[1] if query_codes.ndim == 2 else 0  # packed codes have words, not bits
    query_codes, retrieval_codes, query_labels, retrieval_labels = checked_inputs(
        query_codes, retrieval_codes, query_labels, retrieval_labels, code_format, packed, names)
    num_queries, num_retrieval = query_codes.shape[0], retrieval_codes.shape[0]
    map_at = [int(k) for k in (DEFAULT_MAP_AT if map_at is None else map_at)]
    if any(k <= 0 for k in map_at):
        raise CmhbenchError(f"map_at {map_at}: the K of mAP@K must be positive (--map-at)")
    map_at = sorted({k for k in map_at if k <= num_retrieval})
    precision_at = sorted({int(k) for k in (default_precision_at(num_retrieval) if precision_at is None
                                            else precision_at) if 0 < int(k) <= num_retrieval})

    if packed:
        scorer = PackedScorer(query_codes, retrieval_codes, query_labels, retrieval_labels, bits)
    else:
        scorer = TensorScorer(query_codes, retrieval_codes, query_labels, retrieval_labels, device)
    harmonic = harmonic_numbers(num_retrieval, device)
    workers = torch.get_num_threads() if packed else 1
    size = chunk_size or _chunk_size(num_queries, num_retrieval, device, workers, packed)

    def run(start: int) -> ChunkMetrics:
        return scorer.metrics(start, min(start + size, num_queries), map_at, precision_at, harmonic, ranking)

    starts = list(range(0, num_queries, size))
    with torch.inference_mode():
        if workers > 1 and len(starts) > 1:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                chunks = list(pool.map(run, starts))
        else:
            chunks = [run(s) for s in starts]
        summary = _summarise(chunks, bits, map_at, precision_at, num_retrieval)
    if not ranking:
        for key in ("map", "map_at", "precision_at"):
            summary.pop(key)
    return summary


def _summarise(chunks: list[ChunkMetrics], bits: int, map_at: list[int], precision_at: list[int],
               num_retrieval: int) -> dict[str, Any]:
    def cat(field: str) -> np.ndarray:
        return torch.cat([getattr(c, field) for c in chunks]).cpu().numpy()

    relevant = cat("relevant").astype(np.int64)
    has_rel = relevant > 0
    num_valid = int(has_rel.sum())

    def mean(values: np.ndarray) -> float:
        return float(values[has_rel].mean(axis=0)) if num_valid else 0.0

    def mean_columns(values: np.ndarray) -> list[float]:
        return [float(v) for v in values[has_rel].mean(axis=0)] if num_valid else [0.0] * values.shape[1]

    by_radius, count, rel_count = _radius_metrics(cat("count_by_distance").astype(np.float64),
                                                  cat("relevant_by_distance").astype(np.float64), relevant, bits)
    tie_aware_at = tie_aware_precision_at(count, rel_count, precision_at)
    return {
        "map": mean(cat("ap")),
        "map_tie_aware": mean(cat("ap_tie_aware")),
        "map_at": {str(k): v for k, v in zip(map_at, mean_columns(cat("ap_at")), strict=True)},
        "precision_at": {"k": list(precision_at), "value": mean_columns(cat("precision_at")),
                         "value_tie_aware": [float(v) for v in _average(tie_aware_at, num_valid)]},
        **by_radius,
        "map_chance": mean(expected_random_ap(relevant, num_retrieval)),
        "queries_without_relevant": int((~has_rel).sum()),
        "num_queries": len(relevant),
        "num_retrieval": int(num_retrieval),
    }


def _average(values: np.ndarray, num_valid: int) -> Any:
    return values.mean(axis=0) if num_valid else np.zeros(values.shape[1:])


def _radius_metrics(all_count: np.ndarray, all_rel_count: np.ndarray, relevant: np.ndarray, bits: int):
    """PR by Hamming radius (per query and pooled) and hash lookup, from per-distance counts; also the
    counts of the queries with relevant items (for the tie-aware P@K)."""
    has_rel = relevant > 0
    num_valid = int(has_rel.sum())
    all_retrieved = np.cumsum(all_count, 1)
    # pooled over every (query, item) pair, as MATLAB's calcPreRecRadius: a query without relevant
    # items still retrieves items, all of them wrong
    pooled_retrieved = all_retrieved.sum(0)
    pooled_hits = np.cumsum(all_rel_count, 1).sum(0)
    pooled_precision = np.where(pooled_retrieved > 0, pooled_hits / np.maximum(pooled_retrieved, 1), 0.0)
    pooled_recall = pooled_hits / max(float(relevant.sum()), 1.0)
    empty_queries = int((all_retrieved[:, min(LOOKUP_RADIUS, bits)] == 0).sum())

    count, rel_count, retrieved = all_count[has_rel], all_rel_count[has_rel], all_retrieved[has_rel]
    retrieved_rel = np.cumsum(rel_count, 1)
    total_rel = relevant[has_rel].astype(np.float64)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        precision_r = np.where(retrieved > 0, retrieved_rel / retrieved, 0.0)
    recall_r = retrieved_rel / np.maximum(total_rel, 1)

    lookup = min(LOOKUP_RADIUS, bits)
    lp, lr = precision_r[:, lookup], recall_r[:, lookup]
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(lp + lr > 0, 2 * lp * lr / (lp + lr), 0.0)
    metrics = {
        "pr_by_radius": {
            "radius": list(range(bits + 1)),
            "precision": [float(v) for v in _average(precision_r, num_valid)],
            "recall": [float(v) for v in _average(recall_r, num_valid)],
            "precision_pooled": [float(v) for v in pooled_precision],
            "recall_pooled": [float(v) for v in pooled_recall],
        },
        f"lookup_r{LOOKUP_RADIUS}": {
            "precision": float(_average(lp, num_valid)),
            "recall": float(_average(lr, num_valid)),
            "f1": float(_average(f1, num_valid)),
            "empty_queries": empty_queries,
        },
    }
    return metrics, count, rel_count


def expected_random_ap(relevant: np.ndarray, num_retrieval: int) -> np.ndarray:
    """The chance level: the expected AP of a uniformly random ranking of N items of which R are
    relevant (random codes with ties in random order), exactly (Bestgen, 2015):
    E[AP] = (1/N) · (H_N + (R − 1)/(N − 1) · (N − H_N)).
    A relevant item at position k has (k − 1)(R − 1)/(N − 1) relevant items above it on average,
    so its expected precision is (1 + (k − 1)(R − 1)/(N − 1))/k; average over k = 1..N."""
    n = float(num_retrieval)
    harmonic = float(harmonic_numbers(num_retrieval, torch.device("cpu"))[num_retrieval])
    r = relevant.astype(np.float64)
    slope = (r - 1) / (n - 1) if num_retrieval > 1 else np.zeros_like(r)
    return (harmonic + slope * (n - harmonic)) / n


def tie_aware_precision_at(count: np.ndarray, rel_count: np.ndarray, ks: list[int]) -> np.ndarray:
    """Expected precision@K when items at equal distance come in random order, exact from the
    per-distance counts n[d] (items) and r[d] (relevant): the K-th position falls in distance d*,
    all items before d* are in, and the tied block at d* contributes (K - C[d*-1]) · r[d*] / n[d*].
    Returns (queries, len(ks)) float64."""
    cumulative = np.cumsum(count, 1)
    cumulative_rel = np.cumsum(rel_count, 1)
    out = np.zeros((count.shape[0], len(ks)))
    rows = np.arange(count.shape[0])
    for column, k in enumerate(ks):
        d_star = np.argmax(cumulative >= k, axis=1)  # the distance block that holds position K
        before = np.where(d_star > 0, cumulative[rows, d_star - 1], 0.0)
        before_rel = np.where(d_star > 0, cumulative_rel[rows, d_star - 1], 0.0)
        block, block_rel = count[rows, d_star], rel_count[rows, d_star]
        out[:, column] = (before_rel + (k - before) * block_rel / np.maximum(block, 1)) / k
    return out


def evaluate_directions(
    query_codes: Mapping[str, Any],
    retrieval_codes: Mapping[str, Any],
    query_labels: Any,
    retrieval_labels: Any,
    *,
    directions: Iterable[str] = ("i2t", "t2i"),
    **options: Any,
) -> dict[str, dict[str, Any]]:
    """Score several directions. ``query_codes``/``retrieval_codes`` map 'image'/'text' to codes."""
    directions = list(directions)
    check_directions(directions)
    results = {}
    for direction in directions:
        source, target = DIRECTIONS[direction]
        results[direction] = evaluate(query_codes[source], retrieval_codes[target], query_labels,
                                      retrieval_labels, **options)
    return results
