"""The CPU evaluator's kernel: one fused pass per query over bit-packed codes, compiled by numba.

For each query it computes every item's Hamming distance (XOR + popcount) and relevance (label
AND != 0) into one byte of a per-thread scratch row, and counts n[d] and r[d] (items and relevant
items at each distance). The index-tie-broken ranking needs
no sort: with the counts, item i's position is (items at a smaller distance) + (items at its own
distance with an index <= i), which a second pass over the scratch row in index order reads off
with one counter per distance. AP, mAP@K and P@K accumulate in that pass.

Per query the work is O(N) with no N-sized temporaries beyond two scratch rows; a chunk of queries
never holds a (queries × N) matrix. The measured alternatives (bit-packed numpy with a radix
argsort, torch's matmul + sort on the CPU) both materialise that matrix several times over; see
docs/design.md, "Evaluator kernels".
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import intrinsic


@intrinsic
def popcount(typingctx, word):
    """LLVM's ctpop: one POPCNT instruction where the CPU has it."""
    if word != types.uint64:
        return None

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    # int64 result: numba types int64 + uint64 as float64, and distances are summed as int64
    return types.int64(types.uint64), codegen


@njit(nogil=True, cache=True)
def _distances_and_relevance(q, r_words, ql, rl_words, scratch, relevant, flag, histogram):
    """Pass 1: scratch[i] = d_i + flag·rel_i (flag: the scratch word's top bit), and a histogram of
    those keys: n[d] and r[d] in one count per item. The retrieval side is word-major (words × N),
    so that each loop runs down one contiguous row and compiles to vector instructions."""
    n = scratch.shape[0]
    scratch[:] = 0
    relevant[:] = 0
    for w in range(r_words.shape[0]):
        query_word = q[w]
        for i in range(n):
            scratch[i] += popcount(query_word ^ r_words[w, i])
    for w in range(rl_words.shape[0]):
        label_word = ql[w]
        for i in range(n):
            relevant[i] |= (label_word & rl_words[w, i]) != 0
    for i in range(n):
        scratch[i] += flag * relevant[i]
    # four interleaved histograms: a run of one key would otherwise wait on its own increments
    tail = n - n % 4
    for i in range(0, tail, 4):
        histogram[0, scratch[i]] += 1
        histogram[1, scratch[i + 1]] += 1
        histogram[2, scratch[i + 2]] += 1
        histogram[3, scratch[i + 3]] += 1
    for i in range(tail, n):
        histogram[0, scratch[i]] += 1


@njit(nogil=True, cache=True)
def _ranked_metrics(scratch, count, rel_count, flag, bucket_of, at_hits, at_precision_sums):
    """Pass 2: AP over the stable ranking; per cutoff bucket j (``bucket_of[p - 1]`` for position p
    up to the last cutoff), the hits and summed precisions of the relevant items that fall in it."""
    width = count.shape[0]
    before = np.zeros(width, np.int64)
    rel_before = np.zeros(width, np.int64)
    for d in range(1, width):
        before[d] = before[d - 1] + count[d - 1]
        rel_before[d] = rel_before[d - 1] + rel_count[d - 1]
    seen = np.zeros(width, np.int64)
    rel_seen = np.zeros(width, np.int64)
    total = 0.0
    last_cutoff = bucket_of.shape[0]
    for i in range(scratch.shape[0]):
        d = scratch[i] & (flag - 1)
        seen[d] += 1
        if scratch[i] >= flag:
            rel_seen[d] += 1
            position = before[d] + seen[d]
            precision = (rel_before[d] + rel_seen[d]) / position
            total += precision
            if position <= last_cutoff:
                j = bucket_of[position - 1]
                at_hits[j] += 1
                at_precision_sums[j] += precision
    return total


@njit(nogil=True, cache=True)
def fused_chunk(q, r_words, ql, rl_words, bucket_of, ranked, scratch, relevant, flag,
                count, rel_count, ap, at_hits, at_precision_sums):
    """Queries q (chunk × words) against the whole retrieval set (word-major: words × N); fills the
    per-query outputs. ``scratch``, ``relevant`` and ``flag`` come from ``scratch_rows``."""
    width = count.shape[1]
    histogram = np.zeros((4, 2 * flag), np.int64)
    for row in range(q.shape[0]):
        histogram[:] = 0
        _distances_and_relevance(q[row], r_words, ql[row], rl_words, scratch, relevant, flag, histogram)
        merged = histogram.sum(0)
        for d in range(width):
            rel_count[row, d] = merged[flag + d]
            count[row, d] = merged[d] + merged[flag + d]
        relevant_total = rel_count[row].sum()
        if ranked and relevant_total > 0:
            ap[row] = _ranked_metrics(scratch, count[row], rel_count[row], flag, bucket_of,
                                      at_hits[row], at_precision_sums[row]) / relevant_total


def scratch_rows(bits: int, num_retrieval: int) -> tuple[np.ndarray, np.ndarray, int]:
    """A thread's scratch rows: distance and relevance per item (one byte where distances fit in
    7 bits), relevance alone, and the relevance flag (the first row's top bit)."""
    relevant = np.empty(num_retrieval, np.uint8)
    if bits < 128:
        return np.empty(num_retrieval, np.uint8), relevant, 1 << 7
    return np.empty(num_retrieval, np.uint16), relevant, 1 << 15


def cutoff_buckets(cutoffs: np.ndarray) -> np.ndarray:
    """bucket_of[p - 1]: the first cutoff >= position p, for p = 1..cutoffs[-1]."""
    if not len(cutoffs):
        return np.zeros(0, np.int32)
    return np.searchsorted(cutoffs, np.arange(1, cutoffs[-1] + 1)).astype(np.int32)


def chunk_outputs(queries: int, bits: int, cutoffs: np.ndarray) -> dict[str, np.ndarray]:
    return {
        "count": np.zeros((queries, bits + 1), np.int64),
        "rel_count": np.zeros((queries, bits + 1), np.int64),
        "ap": np.zeros(queries, np.float64),
        "at_hits": np.zeros((queries, len(cutoffs)), np.int64),
        "at_precision_sums": np.zeros((queries, len(cutoffs)), np.float64),
    }
