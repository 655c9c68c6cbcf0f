"""Scorers: a block of queries against the whole retrieval set, as per-query ``ChunkMetrics``.

CPU: ``PackedScorer`` runs the fused numba kernel (fused.py) over bit-packed codes and labels;
chunks of queries run in threads (the kernel releases the GIL).
CUDA: ``TensorScorer`` holds ±1 codes and labels as half-precision matrices, so that distances and
relevance are each one tensor-core matmul, then ranks with torch.sort. Half is exact here: inner
products of ±1 codes are integers in [-K, K], exact in fp16 for K <= 2048 (fp32 is used beyond), and
relevance only asks whether a non-negative sum is non-zero.
"""

from __future__ import annotations

import numpy as np
import torch

from cmhbench.evaluation.fused import chunk_outputs, cutoff_buckets, fused_chunk, scratch_rows
from cmhbench.evaluation.ranking import ChunkMetrics, chunk_metrics, tie_aware_ap

_FP16_EXACT_MAX = 2048
#: Kernels used on the CPU: "fused" (the numba kernel over packed bits) or "torch" (the CUDA path's
#: tensor ops, run on the CPU; tests use it to check that path where no GPU is present).
CPU_KERNELS = "fused"


def fused_kernels(device: torch.device) -> bool:
    return device.type == "cpu" and CPU_KERNELS == "fused"


class TensorScorer:
    """±1 codes (int8) and multi-hot labels on ``device``; ``metrics(start, stop, ...)`` scores a block."""

    def __init__(self, query_codes: np.ndarray, retrieval_codes: np.ndarray,
                 query_labels: np.ndarray, retrieval_labels: np.ndarray, device: torch.device):
        self.bits = int(query_codes.shape[1])
        dtype = torch.float16 if self.bits <= _FP16_EXACT_MAX else torch.float32
        self._q = torch.from_numpy(query_codes).to(device, dtype)
        self._r = torch.from_numpy(retrieval_codes).to(device, dtype)
        self._ql = torch.from_numpy(query_labels).to(device, torch.float16)
        self._rl = torch.from_numpy(retrieval_labels).to(device, torch.float16)

    def metrics(self, start: int, stop: int, map_at: list[int], precision_at: list[int],
                harmonic: torch.Tensor, ranked: bool) -> ChunkMetrics:
        inner = self._q[start:stop] @ self._r.T
        distances = ((self.bits - inner) * 0.5).to(torch.int16)
        relevant = (self._ql[start:stop] @ self._rl.T) > 0
        return chunk_metrics(distances, relevant, self.bits, map_at, precision_at, harmonic, ranked)


class PackedScorer:
    """Bit-packed codes and labels (uint64 words, packing.py); the retrieval side is read item by item,
    so memory beyond the packed arrays is one scratch row per thread."""

    def __init__(self, query_codes: np.ndarray, retrieval_codes: np.ndarray,
                 query_labels: np.ndarray, retrieval_labels: np.ndarray, bits: int):
        self.bits = bits
        self._q, self._ql = query_codes, query_labels
        # word-major (words × N): the kernel's inner loops then run down contiguous rows
        self._r, self._rl = np.ascontiguousarray(retrieval_codes.T), np.ascontiguousarray(retrieval_labels.T)

    def metrics(self, start: int, stop: int, map_at: list[int], precision_at: list[int],
                harmonic: torch.Tensor, ranked: bool) -> ChunkMetrics:
        # every cutoff of mAP@K and P@K is a bucket boundary: the kernel counts hits (and sums their
        # precisions) per bucket, and prefix sums give the values at each K
        cutoffs = np.array(sorted(set(map_at) | set(precision_at)), dtype=np.int64)
        out = chunk_outputs(stop - start, self.bits, cutoffs)
        scratch, relevant, flag = scratch_rows(self.bits, self._r.shape[1])
        fused_chunk(self._q[start:stop], self._r, self._ql[start:stop], self._rl, cutoff_buckets(cutoffs), ranked,
                    scratch, relevant, flag, **out)
        hits_within = np.cumsum(out["at_hits"], 1)
        precision_sums = np.cumsum(out["at_precision_sums"], 1)
        columns = {k: j for j, k in enumerate(cutoffs.tolist())}
        map_columns = [columns[k] for k in map_at]
        hits_in_top = hits_within[:, map_columns]
        ap_at = np.where(hits_in_top > 0, precision_sums[:, map_columns] / np.maximum(hits_in_top, 1), 0.0)
        precision_at_k = hits_within[:, [columns[k] for k in precision_at]] / np.array(precision_at, dtype=np.float64)
        count, rel_count = torch.from_numpy(out["count"]), torch.from_numpy(out["rel_count"])
        return ChunkMetrics(
            relevant=rel_count.sum(1),
            ap=torch.from_numpy(out["ap"]),
            ap_tie_aware=tie_aware_ap(count, rel_count, harmonic),
            ap_at=torch.from_numpy(ap_at.reshape(stop - start, len(map_at))),
            precision_at=torch.from_numpy(precision_at_k.reshape(stop - start, len(precision_at))),
            count_by_distance=count,
            relevant_by_distance=rel_count,
        )
