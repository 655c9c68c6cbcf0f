"""Exhaustive top-k Hamming search over word-major packed codes (compiled by numba).

One pass computes every distance (XOR + popcount down contiguous rows), a histogram of them gives
the distance that holds the k-th item, and a second pass writes the ids below it bucket by bucket:
the k nearest in (distance, index) order, with no sort. The same order the evaluator ranks by.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from cmhbench.evaluation.fused import popcount
from cmhbench.evaluation.packing import pack_codes


@njit(nogil=True, cache=True)
def _top_k(query, database, k, distances, out_ids, out_distances):
    n = database.shape[1]
    distances[:] = 0
    for w in range(database.shape[0]):
        query_word = query[w]
        for i in range(n):
            distances[i] += popcount(query_word ^ database[w, i])
    histogram = np.zeros(database.shape[0] * 64 + 1, np.int64)
    for i in range(n):
        histogram[distances[i]] += 1
    # the distance holding the k-th item, and where each nearer distance's ids start in the output
    starts = np.zeros(histogram.shape[0], np.int64)
    threshold, filled = 0, 0
    while filled + histogram[threshold] < k:
        starts[threshold] = filled
        filled += histogram[threshold]
        threshold += 1
    starts[threshold] = filled
    for i in range(n):
        d = distances[i]
        if d < threshold or (d == threshold and starts[d] < k):
            out_ids[starts[d]] = i
            out_distances[starts[d]] = d
            starts[d] += 1


class HammingIndex:
    """±1 codes (items × bits), packed word-major once; ``search(queries, k)`` -> (distances, ids),
    each queries × k, nearest first, ties by index."""

    def __init__(self, codes: np.ndarray):
        self.bits = int(codes.shape[1])
        self.num_items = int(codes.shape[0])
        self.words = np.ascontiguousarray(pack_codes(codes).T)
        self._distances = np.empty(self.num_items, np.uint16)

    @property
    def nbytes(self) -> int:
        return int(self.words.nbytes)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if not 0 < k <= self.num_items:
            raise ValueError(f"k={k}: expected 1 to {self.num_items} (the items indexed)")
        packed = pack_codes(queries)
        ids = np.empty((len(packed), k), np.int64)
        distances = np.empty((len(packed), k), np.int32)
        for row in range(len(packed)):
            _top_k(packed[row], self.words, k, self._distances, ids[row], distances[row])
        return distances, ids
