"""Straightforward float64 references for the evaluator, written independently of it:
one query at a time, a full sort by (distance, index), and the textbook formulas."""

from __future__ import annotations

import itertools
import math

import numpy as np


def ranking(query: np.ndarray, retrieval: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(order, distances) for one query: ascending Hamming distance, ties by index."""
    bits = query.shape[0]
    distances = np.array([(bits - float(np.dot(query.astype(np.float64), r))) / 2 for r in retrieval])
    order = sorted(range(len(retrieval)), key=lambda i: (distances[i], i))
    return np.array(order), distances


def relevance(query_label: np.ndarray, retrieval_labels: np.ndarray) -> np.ndarray:
    return np.array([bool(np.any(np.logical_and(query_label, r))) for r in retrieval_labels])


def average_precision(ranked_relevance: np.ndarray) -> float:
    total = ranked_relevance.sum()
    if total == 0:
        return float("nan")
    hits, score = 0, 0.0
    for position, rel in enumerate(ranked_relevance, start=1):
        if rel:
            hits += 1
            score += hits / position
    return score / total


def average_precision_at(ranked_relevance: np.ndarray, k: int) -> float:
    top = ranked_relevance[:k]
    if top.sum() == 0:
        return 0.0
    hits, score = 0, 0.0
    for position, rel in enumerate(top, start=1):
        if rel:
            hits += 1
            score += hits / position
    return score / top.sum()


def tie_aware_by_enumeration(distances: np.ndarray, rel: np.ndarray) -> float:
    """Exact expected AP: average over every order of the items within each tie group."""
    groups = [np.flatnonzero(distances == d) for d in sorted(set(distances.tolist()))]
    per_group_orders = [list(itertools.permutations(g)) for g in groups]
    total, count = 0.0, 0
    for combo in itertools.product(*per_group_orders):
        order = np.concatenate([np.array(c, dtype=int) for c in combo])
        total += average_precision(rel[order])
        count += 1
    return total / count


def tie_aware_by_sampling(distances: np.ndarray, rel: np.ndarray, rng: np.random.Generator, n: int) -> float:
    total = 0.0
    for _ in range(n):
        keys = np.lexsort((rng.random(len(distances)), distances))
        total += average_precision(rel[keys])
    return total / n


def full_reference(qc, rc, ql, rl, map_at, precision_at, radius=2):
    """All metrics, brute force: per-query ones averaged over queries with at least one relevant
    item; pooled PR over every (query, item) pair and empty lookups over every query (as MATLAB's
    calcPreRecRadius)."""
    bits = qc.shape[1]
    aps, aps_at, precs_at, pr_p, pr_r, look = [], [], [], [], [], []
    empty, without = 0, 0
    pooled_ret = np.zeros(bits + 1)
    pooled_hit = np.zeros(bits + 1)
    pooled_rel = 0.0
    for q in range(len(qc)):
        order, distances = ranking(qc[q], rc)
        rel = relevance(ql[q], rl)
        if (distances <= radius).sum() == 0:  # counted over every query
            empty += 1
        if rel.sum() == 0:
            without += 1
            for r in range(bits + 1):  # pooled over every pair: these retrieve only wrong items
                pooled_ret[r] += (distances <= r).sum()
            continue
        ranked = rel[order]
        aps.append(average_precision(ranked))
        aps_at.append([average_precision_at(ranked, k) for k in map_at])
        precs_at.append([ranked[:k].sum() / k for k in precision_at])
        ps, rs = [], []
        for r in range(bits + 1):
            inside = distances <= r
            retrieved = inside.sum()
            hit = (inside & rel).sum()
            ps.append(hit / retrieved if retrieved else 0.0)
            rs.append(hit / rel.sum())
            pooled_ret[r] += retrieved
            pooled_hit[r] += hit
        pooled_rel += rel.sum()
        pr_p.append(ps)
        pr_r.append(rs)
        p, r = ps[radius], rs[radius]
        look.append((p, r, 2 * p * r / (p + r) if p + r > 0 else 0.0))
    look = np.array(look)
    return {
        "map": float(np.mean(aps)),
        "map_at": np.mean(aps_at, axis=0),
        "precision_at": np.mean(precs_at, axis=0),
        "pr_precision": np.mean(pr_p, axis=0),
        "pr_recall": np.mean(pr_r, axis=0),
        "pooled_precision": np.where(pooled_ret > 0, pooled_hit / np.maximum(pooled_ret, 1), 0.0),
        "pooled_recall": pooled_hit / pooled_rel,
        "lookup": look.mean(axis=0),
        "empty": empty,
        "without": without,
    }


def harmonic(n: int) -> float:
    return math.fsum(1.0 / i for i in range(1, n + 1))
