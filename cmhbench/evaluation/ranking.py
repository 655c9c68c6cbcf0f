"""Per-query ranking metrics for one chunk of queries, exactly as DESIGN.md defines them (the
tensor path: CUDA, and torch on the CPU where tests ask for it; the CPU's fused kernel is fused.py).

Everything except the index-tie-broken ranking comes from per-distance counts: for each query,
n[d] items and r[d] relevant items at Hamming distance d = 0..K. Those give tie-aware AP, the
precision-recall curve by radius and hash lookup with no sort at all. mAP, mAP@K and P@K need the
stable ranking itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class ChunkMetrics:
    relevant: torch.Tensor            # (Q,) int64: R, relevant items in the retrieval set
    ap: torch.Tensor                  # (Q,) float64: AP over the whole ranking, ties by index
    ap_tie_aware: torch.Tensor        # (Q,) float64: expected AP under random tie order
    ap_at: torch.Tensor               # (Q, len(map_at)) float64
    precision_at: torch.Tensor        # (Q, len(precision_at)) float64
    count_by_distance: torch.Tensor   # (Q, K+1) int64: n[d]
    relevant_by_distance: torch.Tensor  # (Q, K+1) int64: r[d]


def distance_histograms(distances: torch.Tensor, relevant: torch.Tensor, bits: int
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """n[q, d] and r[q, d]: one count over the combined key d + (K+1)·relevant per query."""
    queries = distances.shape[0]
    width = bits + 1
    row_offset = torch.arange(queries, device=distances.device).unsqueeze(1) * (2 * width)
    keys = distances.to(torch.int64) + relevant.to(torch.int64) * width + row_offset
    counts = torch.bincount(keys.reshape(-1), minlength=2 * queries * width).view(queries, 2, width)
    return counts[:, 0] + counts[:, 1], counts[:, 1]


def tie_aware_ap(count: torch.Tensor, rel: torch.Tensor, harmonic: torch.Tensor) -> torch.Tensor:
    """McSherry & Najork (ECIR 2008): expected AP when tied items come in random order.

    In a tie group of n items, r relevant, after N_< items of which R_< relevant, position j holds a
    relevant item with probability r/n, and then the group's other relevant items precede it in
    expectation (j - N_< - 1)(r - 1)/(n - 1) times. Summed over the group's positions this is
    (r/n)[(R_< + 1 - (N_< + 1)c)(H(N_< + n) - H(N_<)) + c n] with c = (r - 1)/(n - 1), H the
    harmonic numbers.
    """
    count = count.to(torch.float64)
    rel = rel.to(torch.float64)
    before = torch.cumsum(count, 1) - count
    rel_before = torch.cumsum(rel, 1) - rel
    c = torch.where(count > 1, (rel - 1) / (count - 1).clamp(min=1), torch.zeros_like(count))
    h_end = harmonic[(before + count).to(torch.int64)]
    h_start = harmonic[before.to(torch.int64)]
    group = (rel_before + 1 - (before + 1) * c) * (h_end - h_start) + c * count
    share = torch.where(count > 0, rel / count.clamp(min=1), torch.zeros_like(count))
    total_rel = rel.sum(1)
    return (share * group).sum(1) / total_rel.clamp(min=1)


def chunk_metrics(distances: torch.Tensor, relevant: torch.Tensor, bits: int, map_at: list[int],
                  precision_at: list[int], harmonic: torch.Tensor, ranked: bool) -> ChunkMetrics:
    """Metrics of one chunk. ``ranked=False`` skips the sort: mAP, mAP@K and P@K come back empty,
    everything built on per-distance counts is still exact."""
    queries, num_retrieval = distances.shape
    count, rel_count = distance_histograms(distances, relevant, bits)
    total_rel = rel_count.sum(1)
    float64 = dict(dtype=torch.float64, device=distances.device)
    ap = torch.zeros(queries, **float64)
    ap_at = torch.zeros(queries, len(map_at), **float64)
    prec_at = torch.zeros(queries, len(precision_at), **float64)
    if ranked:
        # stable: ties by ascending retrieval index
        ranked_rel = torch.gather(relevant, 1, torch.sort(distances, dim=1, stable=True).indices)
        hits = torch.cumsum(ranked_rel, 1, dtype=torch.int32)
        positions = torch.arange(1, num_retrieval + 1, **float64)
        precision_at_hits = torch.where(ranked_rel, hits / positions, 0.0)
        ap = precision_at_hits.sum(1) / total_rel.clamp(min=1)
        if map_at:
            prefix = torch.cumsum(precision_at_hits[:, :max(map_at)], 1)
            for column, k in enumerate(map_at):
                hits_in_top = hits[:, k - 1].to(torch.float64)
                ap_at[:, column] = torch.where(hits_in_top > 0, prefix[:, k - 1] / hits_in_top.clamp(min=1), 0.0)
        for column, k in enumerate(precision_at):
            prec_at[:, column] = hits[:, k - 1].to(torch.float64) / k
    return ChunkMetrics(
        relevant=total_rel,
        ap=ap,
        ap_tie_aware=tie_aware_ap(count, rel_count, harmonic),
        ap_at=ap_at,
        precision_at=prec_at,
        count_by_distance=count,
        relevant_by_distance=rel_count,
    )


def harmonic_numbers(n: int, device: torch.device) -> torch.Tensor:
    """H[0..n] in float64 (H[0] = 0)."""
    values = torch.zeros(n + 1, dtype=torch.float64)
    values[1:] = torch.cumsum(1.0 / torch.arange(1, n + 1, dtype=torch.float64), 0)
    return values.to(device)
