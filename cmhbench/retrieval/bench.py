"""What retrieval with hash codes costs: exhaustive Hamming ranking (ours) against faiss's binary
indexes, on synthetic codes from 10^4 to 10^7 items and on a run's learned codes.

For each database and index: build time, memory per item (the index as faiss serialises it; ours:
the packed words), query latency (one query at a time, one thread; median and 99th percentile), and
recall of the top k against exhaustive search. Ties at the k-th distance make "the" top k
ambiguous, so recall counts the returned items whose distance is within the exhaustive k-th
distance, over k (1.0: a correct top k, whichever tied items it holds).

Indexes (faiss-cpu; its parameters follow the multi-index hashing rule of thumb, substrings of
about log2(N) bits):
* ``IndexBinaryFlat``: faiss's exhaustive scan;
* ``IndexBinaryHash``: one hash table on the first b = min(bits, log2 N) bits, probing keys within
  ``nflip`` = 2 flips;
* ``IndexBinaryMultiHash``: m = round(bits / log2 N) tables of bits // m bits each (multi-index
  hashing), ``nflip`` = 1.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterator

import numpy as np

from cmhbench.errors import CmhbenchError
from cmhbench.retrieval.search import HammingIndex

INDEXES = ("cmhbench-exhaustive", "faiss-flat", "faiss-hash", "faiss-multihash")
#: centres the synthetic codes cluster around, and the chance each bit differs from its centre
_CLUSTERS, _FLIP = 100, 0.1


@dataclass
class Measurement:
    codes: str                 # "synthetic" or the result file the learned codes come from
    index: str
    items: int
    bits: int
    queries: int
    k: int
    build_seconds: float
    bytes_per_item: float
    latency_median_ms: float
    latency_p99_ms: float
    recall: float
    parameters: str = ""


def synthetic_codes(items: int, bits: int, seed: int = 0) -> np.ndarray:
    """±1 codes clustered like learned ones: 100 random centres, each bit flipped with p = 0.1 (uniform
    random codes would leave every hash bucket near-empty, a case no trained model produces)."""
    rng = np.random.default_rng(seed)
    centres = rng.choice(np.array([-1, 1], np.int8), (_CLUSTERS, bits))
    codes = np.empty((items, bits), np.int8)
    block = 1 << 18
    for start in range(0, items, block):
        stop = min(items, start + block)
        flips = rng.random((stop - start, bits)) < _FLIP
        chosen = centres[rng.integers(0, _CLUSTERS, stop - start)]
        codes[start:stop] = np.where(flips, -chosen, chosen)
    return codes


def faiss_bytes(codes: np.ndarray) -> np.ndarray:
    """±1 codes -> faiss's binary layout: bytes, bit j of a code at bit j % 8 of byte j // 8."""
    return np.packbits(codes > 0, axis=1, bitorder="little")


def _faiss():
    try:
        import faiss
    except ImportError:
        raise CmhbenchError("retrieval-bench needs faiss-cpu: pip install faiss-cpu") from None
    return faiss


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """faiss searches on one thread, as ours does. Its OpenMP setting is the process's (torch reads
    the same one), so the previous count is put back."""
    faiss = _faiss()
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)


def _substring_bits(items: int, bits: int) -> int:
    return max(1, min(bits, round(math.log2(max(items, 2)))))


def build(index: str, database: np.ndarray) -> tuple[Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]], int, str]:
    """(search(queries ±1, k) -> (distances, ids), bytes the index holds, its parameters)."""
    items, bits = database.shape
    if index == "cmhbench-exhaustive":
        ours = HammingIndex(database)
        return ours.search, ours.nbytes, ""
    faiss = _faiss()
    b = _substring_bits(items, bits)
    if index == "faiss-flat":
        built, parameters = faiss.IndexBinaryFlat(bits), ""
    elif index == "faiss-hash":
        built, parameters = faiss.IndexBinaryHash(bits, b), f"b={b}, nflip=2"
        built.nflip = 2
    elif index == "faiss-multihash":
        tables = max(1, round(bits / b))  # m = bits / log2 N substrings of bits // m each
        b = bits // tables
        built, parameters = faiss.IndexBinaryMultiHash(bits, tables, b), f"{tables} tables of b={b}, nflip=1"
        built.nflip = 1
    else:
        raise CmhbenchError(f"--indexes {index}: expected some of {', '.join(INDEXES)}")
    built.add(faiss_bytes(database))
    size = len(faiss.serialize_index_binary(built))

    def search(queries: np.ndarray, k: int):
        return built.search(faiss_bytes(queries), k)

    return search, size, parameters


def measure(database: np.ndarray, queries: np.ndarray, k: int, indexes: tuple[str, ...], codes: str
            ) -> Iterator[Measurement]:
    """Every index on one database; recall against our exhaustive search."""
    exact_distances, _ = HammingIndex(database).search(queries, k)
    kth = exact_distances[:, -1:]
    for index in indexes:
        with _one_thread():
            started = time.perf_counter()
            search, size, parameters = build(index, database)
            build_seconds = time.perf_counter() - started
            search(queries[:1], k)  # first-call costs (compilation, allocation) are not latency
            latencies, found = [], []
            for row in range(len(queries)):
                started = time.perf_counter()
                distances, ids = search(queries[row:row + 1], k)
                latencies.append(time.perf_counter() - started)
                found.append(np.where(ids[0] >= 0, distances[0], np.iinfo(np.int32).max))
        within = (np.array(found) <= kth).sum(1)
        yield Measurement(codes=codes, index=index, items=len(database), bits=database.shape[1], queries=len(queries),
                          k=k, build_seconds=build_seconds, bytes_per_item=size / len(database),
                          latency_median_ms=1e3 * statistics.median(latencies),
                          latency_p99_ms=1e3 * float(np.percentile(latencies, 99)),
                          recall=float(within.mean() / k), parameters=parameters)


def synthetic_grid(items: list[int], bits: list[int], queries: int, k: int, indexes: tuple[str, ...]
                   ) -> Iterator[Measurement]:
    for size in items:
        if not k <= size:
            raise CmhbenchError(f"--items {size}: a database needs at least --k {k} items")
    for length in bits:
        if length <= 0 or (length % 8 and any(name.startswith("faiss") for name in indexes)):
            raise CmhbenchError(f"--bits {length}: expected a positive multiple of 8 (faiss's binary indexes "
                                "store whole bytes)")
    for length in bits:
        for size in items:
            codes = synthetic_codes(size + queries, length, seed=size + length)
            yield from measure(codes[queries:], codes[:queries], k, indexes, "synthetic")


def as_dicts(measurements: list[Measurement]) -> list[dict[str, Any]]:
    return [asdict(m) for m in measurements]


def learned(result_path, k: int, indexes: tuple[str, ...]) -> Iterator[Measurement]:
    """A run's stored codes: its retrieval split's text codes as the database, its query split's
    image codes as the queries (image→text search)."""
    from pathlib import Path

    from cmhbench.results.codes_file import codes_path, read_codes

    path = Path(result_path)
    stored_at = codes_path(path) if path.suffix == ".json" else path
    if not stored_at.is_file():
        raise CmhbenchError(f"--codes {result_path}: no codes file {stored_at.name} beside it (results written "
                            "before codes were kept have none)")
    stored = read_codes(stored_at)
    database, queries = stored.codes["retrieval"]["text"], stored.codes["query"]["image"]
    if k > len(database):
        raise CmhbenchError(f"--k {k} is more than the {len(database)} retrieval items of {result_path}")
    yield from measure(np.asarray(database, np.int8), np.asarray(queries, np.int8), k, indexes, path.name)
