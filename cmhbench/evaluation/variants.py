"""Papers' metric variants: the numbers published code bases report as "mAP", each reproduced by
name from the function that computes it, so that a cmhbench result can be set beside a paper's table.

cmhbench's own ``map`` (docs/design.md, "Metrics") ranks the whole retrieval set with ties broken by
ascending retrieval index and averages AP over the queries that have a relevant item. The variants
differ from it in three ways, each as its original code does:

- tie order: the original's own unstable sort (``torch.sort`` or ``numpy.argsort``) on the same
  float32 Hamming distances. The same call on the same values gives the same order as the original
  under the same library build and CPU; another build (or a GPU) may order ties differently, which
  moves the number when codes are short;
- what an AP averages: the precision at the first min(k, R) relevant items, wherever they are
  (``calc_map_k``), or at the relevant items among the top K ranks (``calculate_top_map``);
- the denominator: every query, those without a relevant item counted as 0 (or, in TwDH's matrix
  form, making the whole result NaN).

Every variant is vectorised over blocks of queries: one distance matrix, one sort and one cumulative
sum per block, in float64 (the torch originals accumulate in float32; the difference is below 1e-6,
far below the four decimals papers print).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import torch

from cmhbench.errors import CmhbenchError
from cmhbench.evaluation.inputs import checked_inputs

#: distance-matrix cells per block of queries (~120 MiB of temporaries a block: distances, order, hits)
_BLOCK_CELLS = 1 << 22

#: the unstable sorts the originals call, on a block of float32 distances (one row per query)
_ORDERS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    # torch.sort(hamm) on the CPU (dim=-1, stable=False): each row is sorted on its own, so a block
    # of rows is ordered exactly as the original's one-row (1×N) or whole-matrix call
    "torch.sort": lambda distances: torch.sort(torch.from_numpy(distances), dim=-1)[1].numpy(),
    # numpy.argsort(hamm), default kind ("quicksort": introsort, or a SIMD sort where numpy has one
    # for the CPU): also row by row, so a block equals the original's per-query 1-d call
    "numpy.argsort": lambda distances: np.argsort(distances, axis=-1),
    # MATLAB's [~, index] = sort(hamm): stable, so ties in ascending retrieval index (as cmhbench's own)
    "stable": lambda distances: np.argsort(distances, axis=-1, kind="stable"),
}


@dataclass(frozen=True)
class MetricVariant:
    """One paper's "mAP", reproduced from the code that computes it."""

    name: str      # stable identifier, e.g. "djsrh_map@50"
    title: str     # human title
    source: str    # "repo@commit path:line function" of the code it reproduces
    compute: Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], float]
    #: the K of a top-K variant: ``variant_scores`` skips it when K exceeds the retrieval set
    k: int | None = None


@dataclass(frozen=True)
class _Definition:
    """What a variant computes: the sort it ranks with and how one block of ranked relevance
    becomes a sum of per-query APs."""

    order: str                                      # a key of _ORDERS
    block_sum: Callable[[np.ndarray], tuple[float, int]]  # ranked relevance -> (sum of AP, empty queries)
    columns: int | None = None                      # ranks the block needs (top-K variants)
    nan_if_empty: bool = False                      # one query with nothing counted makes it NaN


def _calc_map_k_block(ranked: np.ndarray, k: int | None) -> tuple[float, int]:
    """``calc_map_k``: the mean of j / position_j over the first min(k, R) relevant items j."""
    hits = np.cumsum(ranked, axis=1, dtype=np.int64)
    counted_per_query = hits[:, -1] if k is None else np.minimum(hits[:, -1], k)
    counted = ranked & (hits <= counted_per_query[:, None])
    positions = np.arange(1, ranked.shape[1] + 1, dtype=np.float64)
    precision_sum = np.where(counted, hits / positions, 0.0).sum(axis=1)
    has = counted_per_query > 0
    return float((precision_sum[has] / counted_per_query[has]).sum()), int((~has).sum())


def _top_map_block(ranked: np.ndarray) -> tuple[float, int]:
    """``calculate_top_map``: AP over the block's ranks (the top K), normalised by the relevant
    items among them; a query with none there adds 0."""
    hits = np.cumsum(ranked, axis=1, dtype=np.int64)
    in_top = hits[:, -1]
    positions = np.arange(1, ranked.shape[1] + 1, dtype=np.float64)
    precision_sum = np.where(ranked, hits / positions, 0.0).sum(axis=1)
    has = in_top > 0
    return float((precision_sum[has] / in_top[has]).sum()), int((~has).sum())


def _score(definitions: list[_Definition], query_codes: np.ndarray, retrieval_codes: np.ndarray,
           query_labels: np.ndarray, retrieval_labels: np.ndarray) -> list[float]:
    """Every definition's score on checked inputs, each sort done once per block of queries."""
    num_queries, bits = query_codes.shape
    num_retrieval = retrieval_codes.shape[0]
    # float32 as the originals hold codes (network outputs after sign): 0.5 * (K - <q, r>) gives the
    # same float32 values as their calc_hammingDist, so their sorts see the same keys
    retrieval_f32 = retrieval_codes.astype(np.float32).T.copy()
    # relevance from float32 inner products: exact for any label count (a uint8 dot would wrap at 256)
    retrieval_labels_f32 = retrieval_labels.astype(np.float32).T.copy()
    sums = [0.0] * len(definitions)
    empty = [0] * len(definitions)
    block = max(1, _BLOCK_CELLS // num_retrieval)
    for start in range(0, num_queries, block):
        stop = min(start + block, num_queries)
        inner = query_codes[start:stop].astype(np.float32) @ retrieval_f32
        distances = np.ascontiguousarray(np.float32(0.5) * (np.float32(bits) - inner), dtype=np.float32)
        relevant = (query_labels[start:stop].astype(np.float32) @ retrieval_labels_f32) > 0
        ranked_by: dict[str, np.ndarray] = {}
        for i, definition in enumerate(definitions):
            if definition.order not in ranked_by:
                order = _ORDERS[definition.order](distances)
                ranked_by[definition.order] = np.take_along_axis(relevant, order, axis=1)
            ranked = ranked_by[definition.order]
            if definition.columns is not None:
                ranked = ranked[:, :definition.columns]
            block_sum, block_empty = definition.block_sum(ranked)
            sums[i] += block_sum
            empty[i] += block_empty
    return [float("nan") if d.nan_if_empty and e else s / num_queries
            for d, s, e in zip(definitions, sums, empty, strict=True)]


def _compute(definition: _Definition, query_codes: Any, retrieval_codes: Any, query_labels: Any,
             retrieval_labels: Any) -> float:
    return _score([definition], *checked_inputs(query_codes, retrieval_codes, query_labels, retrieval_labels))[0]


def _calc_map_k_definition(k: int | None, nan_if_empty: bool) -> _Definition:
    if k is not None and k <= 0:
        raise CmhbenchError(f"k={k}: calc_map_k's k must be positive (or None for every relevant item)")
    return _Definition("torch.sort", partial(_calc_map_k_block, k=k), nan_if_empty=nan_if_empty)


def _top_map_definition(topk: int) -> _Definition:
    if topk <= 0:
        raise CmhbenchError(f"topk={topk}: the K of calculate_top_map must be positive")
    return _Definition("numpy.argsort", _top_map_block, columns=topk)


def dchmt_calc_map_k(query_codes: Any, retrieval_codes: Any, query_labels: Any, retrieval_labels: Any,
                     k: int | None = None) -> float:
    """DCHMT's and MITH's ``calc_map_k`` (kalenforn/DCHMT utils/calc_utils.py:40,
    DarrenZZhang/MM23-MITH utils/calc_utils.py:16).

    Per query: rank by ``torch.sort`` (unstable; the same call on the same float32 distances, so the
    same tie order on the same torch build and CPU), then average j / position_j over the first
    min(k, R) relevant items (k=None: all R). The sum is divided by ALL queries: a query with no
    relevant item adds 0 and still counts in the denominator. Computed in float64 (the original
    accumulates in float32).
    """
    return _compute(_calc_map_k_definition(k, nan_if_empty=False),
                    query_codes, retrieval_codes, query_labels, retrieval_labels)


def twdh_calc_map_k(query_codes: Any, retrieval_codes: Any, query_labels: Any, retrieval_labels: Any,
                    k: int | None = 5000) -> float:
    """TwDH's ``calc_map_k`` (kalenforn/clip-based-cross-modal-hash common/calc_utils.py:58), the
    whole-matrix form TwDH evaluates with k = ``top_k`` = 5000 (configs/TwDH/config.yaml:59).

    Despite the name "MAP@5000" it is not AP over the top 5000 ranks: it averages j / position_j
    over the first min(k, R) relevant items, wherever they are ranked. Ranking: ``torch.sort`` of the
    float32 distance matrix on the CPU (dim=-1, unstable; same tie order as the original on the same
    torch build and CPU). Divided by all queries; a query with no relevant item makes the original's
    ``torch.mean`` of an empty tensor NaN, and so the whole result NaN, as here.
    """
    return _compute(_calc_map_k_definition(k, nan_if_empty=True),
                    query_codes, retrieval_codes, query_labels, retrieval_labels)


def calculate_top_map(query_codes: Any, retrieval_codes: Any, query_labels: Any, retrieval_labels: Any,
                      topk: int = 50) -> float:
    """DJSRH's ``calculate_top_map`` (zzs1994/DJSRH metric.py:130; DAPH's ``calc_topMap`` is the same).

    Per query: rank by ``numpy.argsort`` (default kind, unstable; same call on the same float32
    distances, so the same tie order on the same numpy build and CPU), keep the top ``topk`` ranks,
    and average j / position_j over the relevant items among them (normalised by the relevant items
    in the top K, not by R). A query with none in its top K adds 0; the sum is divided by ALL
    queries, those without any relevant item included. float64, as the original.
    """
    return _compute(_top_map_definition(topk), query_codes, retrieval_codes, query_labels, retrieval_labels)


def daph_calc_map(query_codes: Any, retrieval_codes: Any, query_labels: Any, retrieval_labels: Any) -> float:
    """DAPH's ``calc_map`` (rongchengtu1/DAPH utils/calc_hr.py:9, reported by DAPH.py:229-230).

    Per query: rank by ``numpy.argsort`` (default kind, unstable; same call on the same float32
    distances as DAPH's float32 codes give, so the same tie order on the same numpy build and CPU),
    then AP over the whole ranking (the mean of j / position_j over all R relevant items). A query
    with no relevant item adds 0 and still counts in the denominator (all queries). float64, as the
    original.
    """
    definition = _Definition("numpy.argsort", partial(_calc_map_k_block, k=None))
    return _compute(definition, query_codes, retrieval_codes, query_labels, retrieval_labels)


def dcmh_calc_map(query_codes: Any, retrieval_codes: Any, query_labels: Any, retrieval_labels: Any) -> float:
    """DCMH's MATLAB mAP (jiangqy/DCMH-CVPR2017 DCMH_matlab/utils/calcMapTopkMapTopkPreTopkRecLabel.m,
    AP lines 30-41, ``result.map = map / numQuery`` line 57; called without topk by process_DCMH.m:107).

    Per query: MATLAB's stable ``sort`` of the integer Hamming distances (ties in ascending retrieval
    index, as cmhbench's ``map``), AP over the whole ranking; a query with no relevant item is skipped
    but counted in the denominator (all queries). So it equals cmhbench's ``map`` times the share of
    queries with a relevant item.
    """
    return _compute(_DEFINITIONS["dcmh_map"], query_codes, retrieval_codes, query_labels, retrieval_labels)


_DEFINITIONS: dict[str, _Definition] = {
    "dcmh_map": _Definition("stable", partial(_calc_map_k_block, k=None)),
    "dchmt_map": _calc_map_k_definition(None, nan_if_empty=False),
    "twdh_map@5000": _calc_map_k_definition(5000, nan_if_empty=True),
    "djsrh_map@50": _top_map_definition(50),
    "daph_map": _Definition("numpy.argsort", partial(_calc_map_k_block, k=None)),
}

VARIANTS: dict[str, MetricVariant] = {
    variant.name: variant for variant in (
        MetricVariant(
            name="dcmh_map",
            title="DCMH (MATLAB): whole ranking, stable sort ties, / all queries",
            source="jiangqy/DCMH-CVPR2017@67d0e84 DCMH_matlab/DCMH_matlab/utils/"
                   "calcMapTopkMapTopkPreTopkRecLabel.m:57 (called without topk, process_DCMH.m:107)",
            compute=partial(_compute, _DEFINITIONS["dcmh_map"]),
        ),
        MetricVariant(
            name="dchmt_map",
            title="DCHMT / MITH calc_map_k (k=None): whole ranking, torch.sort ties, / all queries",
            source="kalenforn/DCHMT@79bd5e6 utils/calc_utils.py:40 calc_map_k "
                   "(= DarrenZZhang/MM23-MITH@4583a7c utils/calc_utils.py:16)",
            compute=partial(_compute, _DEFINITIONS["dchmt_map"]),
        ),
        MetricVariant(
            name="twdh_map@5000",
            title="TwDH MAP@5000: calc_map_k with k=5000 (first 5000 relevant items), torch.sort ties",
            source="kalenforn/clip-based-cross-modal-hash@6d64ae2 common/calc_utils.py:58 calc_map_k "
                   "(k = top_k = 5000, configs/TwDH/config.yaml:59)",
            compute=partial(_compute, _DEFINITIONS["twdh_map@5000"]),
            k=5000,
        ),
        MetricVariant(
            name="djsrh_map@50",
            title="DJSRH MAP@50: calculate_top_map, top 50 ranks, numpy.argsort ties, / all queries",
            source="zzs1994/DJSRH@6041c2d metric.py:130 calculate_top_map (topk=50, train.py:139)",
            compute=partial(_compute, _DEFINITIONS["djsrh_map@50"]),
            k=50,
        ),
        MetricVariant(
            name="daph_map",
            title="DAPH calc_map: whole ranking, numpy.argsort ties, / all queries",
            source="rongchengtu1/DAPH@0411a3c utils/calc_hr.py:9 calc_map (DAPH.py:229)",
            compute=partial(_compute, _DEFINITIONS["daph_map"]),
        ),
    )
}


def variant_scores(query_codes: Any, retrieval_codes: Any, query_labels: Any, retrieval_labels: Any,
                   names: Iterable[str] | None = None) -> dict[str, float]:
    """Every variant (or those named), by name; a top-K variant whose K exceeds the retrieval set is
    left out. Each sort is done once for all the variants that use it."""
    chosen = list(VARIANTS) if names is None else list(dict.fromkeys(names))
    unknown = [name for name in chosen if name not in VARIANTS]
    if unknown:
        raise CmhbenchError(f"unknown metric variant(s) {', '.join(map(repr, unknown))}; "
                            f"known: {', '.join(VARIANTS)}")
    arrays = checked_inputs(query_codes, retrieval_codes, query_labels, retrieval_labels)
    num_retrieval = arrays[1].shape[0]
    chosen = [name for name in chosen if VARIANTS[name].k is None or VARIANTS[name].k <= num_retrieval]
    scores = _score([_DEFINITIONS[name] for name in chosen], *arrays) if chosen else []
    return dict(zip(chosen, scores, strict=True))
