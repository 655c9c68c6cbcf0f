"""Hamming distances and relevance for one chunk of queries against the whole retrieval set.

CPU: codes and labels are bit-packed into uint64 words; distance is XOR + popcount and relevance
is AND != 0, in numpy (which releases the GIL, so chunks run on all cores in threads).
CUDA: ±1 codes and labels are half-precision matrices and both are one tensor-core matmul. Half is
exact here: inner products of ±1 codes are integers in [-K, K], exact in fp16 for K <= 2048
(fp32 is used beyond), and relevance only asks whether a non-negative sum is non-zero.
"""

from __future__ import annotations

import numpy as np
import torch

from cmhbench.evaluation.packing import pack_bits, pack_codes

_FP16_EXACT_MAX = 2048
#: Kernels used on the CPU: "numpy" (bit-packed, radix sort) or "torch" (the CUDA path's tensor ops,
#: run on the CPU; tests use it to check that path where no GPU is present).
CPU_KERNELS = "numpy"


def numpy_kernels(device: torch.device) -> bool:
    return device.type == "cpu" and CPU_KERNELS == "numpy"




class PairScorer:
    """Retrieval side prepared once; ``chunk(start, stop)`` scores a block of queries."""

    def __init__(self, query_codes: np.ndarray, retrieval_codes: np.ndarray,
                 query_labels: np.ndarray, retrieval_labels: np.ndarray, device: torch.device):
        self.device = device
        self.bits = int(query_codes.shape[1])
        self.num_retrieval = int(retrieval_codes.shape[0])
        # uint8 distances let numpy use its O(n) radix sort; wider codes need uint16.
        self.distance_dtype = np.uint8 if self.bits <= 255 else np.uint16
        self.packed = numpy_kernels(device)
        if not self.packed:
            dtype = torch.float16 if self.bits <= _FP16_EXACT_MAX else torch.float32
            self._q = torch.from_numpy(query_codes).to(device, dtype)
            self._r = torch.from_numpy(retrieval_codes).to(device, dtype)
            self._ql = torch.from_numpy(query_labels).to(device, torch.float16)
            self._rl = torch.from_numpy(retrieval_labels).to(device, torch.float16)
        else:
            self._q = pack_codes(query_codes)
            self._r = pack_codes(retrieval_codes)
            self._ql = pack_bits(query_labels)
            self._rl = pack_bits(retrieval_labels)

    def chunk(self, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(distances, relevance) for queries start..stop-1: integer and bool, chunk×N."""
        if not self.packed:
            inner = self._q[start:stop] @ self._r.T
            distances = ((self.bits - inner) * 0.5).to(torch.int16)
            relevant = (self._ql[start:stop] @ self._rl.T) > 0
            return distances, relevant
        q, ql = self._q[start:stop], self._ql[start:stop]
        distances = np.zeros((stop - start, self.num_retrieval), dtype=self.distance_dtype)
        for word in range(q.shape[1]):
            distances += np.bitwise_count(q[:, None, word] ^ self._r[None, :, word]).astype(
                self.distance_dtype, copy=False)
        relevant = np.zeros((stop - start, self.num_retrieval), dtype=bool)
        for word in range(ql.shape[1]):
            relevant |= (ql[:, None, word] & self._rl[None, :, word]) != 0
        return torch.from_numpy(distances), torch.from_numpy(relevant)


def stable_order(distances: torch.Tensor) -> torch.Tensor:
    """Per-row ranking: ascending distance, ties by ascending retrieval index (a stable sort)."""
    if numpy_kernels(distances.device):
        # numpy's stable sort is a radix sort for 8/16-bit integers: linear in the row length.
        return torch.from_numpy(np.argsort(distances.numpy(), axis=1, kind="stable"))
    return torch.sort(distances, dim=1, stable=True).indices
