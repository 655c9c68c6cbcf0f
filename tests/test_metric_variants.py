"""Papers' mAP variants (cmhbench/evaluation/variants.py) against ports of the original code.

Each port below follows its original line by line (per-query loops, the original's sort call, its
dtypes), changed only where a modern library refuses the original (noted). The torch originals
accumulate in float32; their ports take the accumulation dtype as a parameter, so that they can be
compared exactly (float64, 1e-9) and as written (float32, within float32 rounding).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cmhbench.errors import CmhbenchError
from cmhbench.evaluation import variants
from cmhbench.evaluation.variants import (
    VARIANTS,
    MetricVariant,
    calculate_top_map,
    daph_calc_map,
    dcmh_calc_map,
    dchmt_calc_map_k,
    twdh_calc_map_k,
    variant_scores,
)
from conftest import shared_data

EXACT = 1e-9
FLOAT32 = 1e-5


# --- ports of the original code -----------------------------------------------------------------

def port_calc_hammingDist(B1, B2):
    # kalenforn/DCHMT utils/calc_utils.py:6 (the same in TwDH's common/calc_utils.py:51)
    q = B2.shape[1]
    if len(B1.shape) < 2:
        B1 = B1.unsqueeze(0)
    distH = 0.5 * (q - B1.mm(B2.transpose(0, 1)))
    return distH


def port_dchmt_calc_map_k(qB, rB, query_L, retrieval_L, k=None, rank=0, dtype=torch.float32):
    # kalenforn/DCHMT utils/calc_utils.py:40 calc_map_k (MITH utils/calc_utils.py:16 is the same);
    # ``dtype`` stands for the original's torch.float32 in count and tindex
    num_query = query_L.shape[0]
    qB = torch.sign(qB)
    rB = torch.sign(rB)
    map = 0
    if k is None:
        k = retrieval_L.shape[0]
    for iter in range(num_query):
        q_L = query_L[iter]
        if len(q_L.shape) < 2:
            q_L = q_L.unsqueeze(0)      # [1, hash length]
        gnd = (q_L.mm(retrieval_L.transpose(0, 1)) > 0).squeeze().type(torch.float32)
        tsum = torch.sum(gnd)
        if tsum == 0:
            continue
        hamm = port_calc_hammingDist(qB[iter, :], rB)
        _, ind = torch.sort(hamm)
        ind.squeeze_()
        gnd = gnd[ind]
        total = min(k, int(tsum))
        count = torch.arange(1, total + 1).type(dtype)
        tindex = torch.nonzero(gnd)[:total].squeeze().type(dtype) + 1.0
        map = map + torch.mean(count / tindex)
    map = map / num_query
    return map


def port_twdh_calc_map_k(qB, rB, query_L, retrieval_L, k=None, dtype=torch.float32):
    # kalenforn/clip-based-cross-modal-hash common/calc_utils.py:58 calc_map_k (the whole-matrix form)
    num_query = query_L.shape[0]
    map = 0
    if k is None:
        k = retrieval_L.shape[0]
    gnds = (query_L.mm(retrieval_L.transpose(0, 1)) > 0).squeeze().type(torch.float32)
    tsums = torch.sum(gnds, dim=-1, keepdim=True, dtype=torch.int32)
    hamms = port_calc_hammingDist(qB, rB)
    _, ind = torch.sort(hamms, dim=-1)
    totals = torch.min(tsums, torch.tensor([k], dtype=torch.int32).expand_as(tsums).to(tsums.device))
    for iter in range(num_query):
        gnd = gnds[iter][ind[iter]]
        total = totals[iter].squeeze()
        count = torch.arange(1, total + 1).type(dtype).to(gnd.device)
        tindex = torch.nonzero(gnd)[:total].squeeze().type(dtype) + 1.0
        map = map + torch.mean(count / tindex)
    map = map / num_query
    return map


def port_calculate_hamming(B1, B2):
    # zzs1994/DJSRH metric.py:92 (DAPH's utils/calc_hr.py:4 calc_hammingDist is the same)
    leng = B2.shape[1]
    distH = 0.5 * (leng - np.dot(B1, B2.transpose()))
    return distH


def port_calculate_top_map(qu_B, re_B, qu_L, re_L, topk):
    # zzs1994/DJSRH metric.py:130 calculate_top_map
    num_query = qu_L.shape[0]
    topkmap = 0
    for iter in range(num_query):
        gnd = (np.dot(qu_L[iter, :], re_L.transpose()) > 0).astype(np.float32)
        hamm = port_calculate_hamming(qu_B[iter, :], re_B)
        ind = np.argsort(hamm)
        gnd = gnd[ind]

        tgnd = gnd[0:topk]
        tsum = np.sum(tgnd)
        if tsum == 0:
            continue
        # the original passes the float32 tsum as linspace's num, which numpy >= 1.18 refuses
        count = np.linspace(1, tsum, int(tsum))
        tindex = np.asarray(np.where(tgnd == 1)) + 1.0
        topkmap_ = np.mean(count / (tindex))
        topkmap = topkmap + topkmap_
    topkmap = topkmap / num_query
    return topkmap


def port_daph_calc_map(qB, rB, queryL, retrievalL):
    # rongchengtu1/DAPH utils/calc_hr.py:9 calc_map
    num_query = queryL.shape[0]
    map = 0
    for iter in range(num_query):
        gnd = (np.dot(queryL[iter, :], retrievalL.transpose()) > 0).astype(np.float32)
        tsum = int(np.sum(gnd))
        if tsum == 0:
            continue
        hamm = port_calculate_hamming(qB[iter, :], rB)
        ind = np.argsort(hamm)
        gnd = gnd[ind]
        count = np.linspace(1, tsum, tsum)
        tindex = np.asarray(np.where(gnd == 1)) + 1.0
        map_ = np.mean(count / (tindex))
        map = map + map_
    map = map / num_query
    return map


def port_dcmh_matlab_map(qB, rB, queryL, retrievalL):
    # jiangqy/DCMH-CVPR2017 DCMH_matlab/utils/calcMapTopkMapTopkPreTopkRecLabel.m (MATLAB, 1-based),
    # the map path only: hamm from hammingDist (integers), [~, index] = sort(hamm) (stable),
    # a query without relevant items skipped by `continue` yet counted in map / numQuery
    numQuery = queryL.shape[0]
    map = 0.0
    for ii in range(numQuery):
        gnd = (queryL[ii, :].astype(np.float64) @ retrievalL.T.astype(np.float64)) > 0
        hamm = ((qB[ii, :] != rB).sum(axis=1)).astype(np.uint16)
        index = np.argsort(hamm, kind="stable")  # MATLAB's sort is stable
        tsum = int(gnd.sum())
        if tsum == 0:
            continue
        gnd = gnd[index]
        count = np.arange(1, tsum + 1)
        tindex = np.flatnonzero(gnd) + 1
        map += np.mean(count / tindex)
    return map / numQuery


# --- the arrays each original is given: float32 codes (sign of network outputs), its own labels ---

def as_torch(qc, rc, ql, rl):
    """DCHMT/TwDH: float32 code buffers, int64 label tensors (their datasets' get_all_label)."""
    return (torch.from_numpy(qc.astype(np.float32)), torch.from_numpy(rc.astype(np.float32)),
            torch.from_numpy(ql.astype(np.int64)), torch.from_numpy(rl.astype(np.int64)))


def as_numpy(qc, rc, ql, rl):
    """DJSRH/DAPH: float32 codes from torch.sign(...).numpy(), float labels."""
    return qc.astype(np.float32), rc.astype(np.float32), ql.astype(np.float32), rl.astype(np.float32)


def ports(qc, rc, ql, rl, dtype=torch.float64) -> dict[str, float]:
    """Every variant as its port computes it (torch ports accumulating in ``dtype``)."""
    t, n = as_torch(qc, rc, ql, rl), as_numpy(qc, rc, ql, rl)
    return {
        "dcmh_map": float(port_dcmh_matlab_map(qc, rc, ql, rl)),
        "dchmt_map": float(port_dchmt_calc_map_k(*t, k=None, dtype=dtype)),
        "twdh_map@5000": float(port_twdh_calc_map_k(*t, k=5000, dtype=dtype)),
        "djsrh_map@50": float(port_calculate_top_map(*n, topk=50)),
        "daph_map": float(port_daph_calc_map(*n)),
    }


def fitting(scores: dict[str, float], num_retrieval: int) -> dict[str, float]:
    """The variants variant_scores reports: a top-K one only where K fits the retrieval set."""
    return {name: value for name, value in scores.items()
            if VARIANTS[name].k is None or VARIANTS[name].k <= num_retrieval}


# --- cases ---------------------------------------------------------------------------------------

def random_case(seed: int):
    """Short codes (4-16 bits: many ties), 5-40 queries × 20-300 items, multi-hot labels; odd seeds
    have queries without any relevant item (no label, or only a class no item has)."""
    rng = np.random.default_rng(seed)
    bits = int(rng.integers(4, 17))
    queries, items, classes = int(rng.integers(5, 41)), int(rng.integers(20, 301)), int(rng.integers(2, 9))
    density = rng.uniform(0.1, 0.5)
    query_labels = (rng.random((queries, classes)) < density).astype(np.uint8)
    retrieval_labels = (rng.random((items, classes)) < density).astype(np.uint8)
    if seed % 2:
        absent = classes - 1
        retrieval_labels[:, absent] = 0
        lonely = rng.random(queries) < 0.3
        lonely[0] = True
        query_labels[lonely] = 0
        query_labels[lonely & (rng.random(queries) < 0.5), absent] = 1
    else:  # every query has a relevant item
        query_labels[query_labels.sum(1) == 0, 0] = 1
        retrieval_labels[rng.integers(items)] = 1
    query_codes = np.where(rng.random((queries, bits)) < 0.5, 1, -1).astype(np.int8)
    if seed % 3 == 0:  # retrieval codes from a small pool: large tie groups
        pool = np.where(rng.random((int(rng.integers(2, 8)), bits)) < 0.5, 1, -1).astype(np.int8)
        retrieval_codes = pool[rng.integers(0, len(pool), items)]
    else:
        retrieval_codes = np.where(rng.random((items, bits)) < 0.5, 1, -1).astype(np.int8)
    return query_codes, retrieval_codes, query_labels, retrieval_labels


def assert_scores(got: dict[str, float], want: dict[str, float], tolerance: float, where: str):
    assert set(got) == set(want), where
    for name in want:
        if np.isnan(want[name]):
            assert np.isnan(got[name]), f"{where}: {name} {got[name]} but the original gives NaN"
        else:
            assert abs(got[name] - want[name]) <= tolerance, f"{where}: {name} {got[name]!r} != {want[name]!r}"


SEEDS = range(200)


@pytest.mark.parametrize("seed", SEEDS)
def test_variants_match_ports_on_random_cases_with_ties(seed):
    case = random_case(seed)
    want = ports(*case)
    assert_scores(variant_scores(*case), fitting(want, case[1].shape[0]), EXACT, f"seed {seed}")
    # each variant's own compute, K above the retrieval size included (every item then in the top K)
    each = {name: variant.compute(*case) for name, variant in VARIANTS.items()}
    assert_scores(each, want, EXACT, f"seed {seed}, compute")
    if seed % 5 == 0:  # the originals as written (float32 accumulation in the torch ones)
        assert_scores(each, ports(*case, dtype=torch.float32), FLOAT32, f"seed {seed}, float32")


@pytest.mark.parametrize("seed", SEEDS)
def test_functions_match_ports_at_other_k(seed):
    """calc_map_k with a k below R (the first k relevant items only) and top-K maps at any K."""
    case = random_case(seed)
    rng = np.random.default_rng(10_000 + seed)
    k = int(rng.integers(1, case[1].shape[0] + 1))
    t, n = as_torch(*case), as_numpy(*case)
    where = f"seed {seed}, k={k}"
    assert_scores({"dchmt": dchmt_calc_map_k(*case, k=k), "twdh": twdh_calc_map_k(*case, k=k),
                   "top": calculate_top_map(*case, topk=k), "daph": daph_calc_map(*case)},
                  {"dchmt": float(port_dchmt_calc_map_k(*t, k=k, dtype=torch.float64)),
                   "twdh": float(port_twdh_calc_map_k(*t, k=k, dtype=torch.float64)),
                   "top": float(port_calculate_top_map(*n, topk=k)),
                   "daph": float(port_daph_calc_map(*n))}, EXACT, where)


def test_random_cases_cover_ties_and_queries_without_relevant_items():
    """The cases exercise what the variants differ in: tie order moves the numbers (against the
    same formulas ranked stably), and queries without relevant items occur (TwDH: NaN)."""
    tie_sensitive, with_empty, nan_twdh = 0, 0, 0
    for seed in SEEDS:
        qc, rc, ql, rl = random_case(seed)
        relevant = (ql.astype(np.int64) @ rl.T.astype(np.int64)) > 0
        with_empty += bool((relevant.sum(1) == 0).any())
        distances = (qc.shape[1] - qc.astype(np.int64) @ rc.T.astype(np.int64)) // 2
        ranked = np.take_along_axis(relevant, np.argsort(distances, axis=1, kind="stable"), axis=1)
        hits = np.cumsum(ranked, axis=1)
        ap = np.where(ranked, hits / np.arange(1, rc.shape[0] + 1), 0).sum(1) / np.maximum(hits[:, -1], 1)
        tie_sensitive += abs(VARIANTS["daph_map"].compute(qc, rc, ql, rl) - ap.sum() / len(qc)) > 1e-9
        nan_twdh += bool(np.isnan(VARIANTS["twdh_map@5000"].compute(qc, rc, ql, rl)))
    assert tie_sensitive >= 150
    assert 80 <= with_empty <= 120 and nan_twdh == with_empty


def test_hand_computed_case():
    """Query 0 sees its items at distances 1, 0, 4, 2, 3 (no ties): ranked 1, 0, 3, 4, 2, relevant
    at ranks 1, 4 and 5. Query 1 has no relevant item."""
    query_codes = np.array([[1, 1, 1, 1], [1, 1, 1, 1]], dtype=np.int8)
    retrieval_codes = np.array([[1, 1, 1, -1], [1, 1, 1, 1], [-1, -1, -1, -1], [1, -1, -1, 1], [1, -1, -1, -1]],
                               dtype=np.int8)
    retrieval_labels = np.array([[0, 1], [1, 0], [1, 0], [0, 1], [1, 0]], dtype=np.uint8)
    query_labels = np.array([[1, 0], [0, 0]], dtype=np.uint8)
    case = (query_codes, retrieval_codes, query_labels, retrieval_labels)
    ap = (1 / 1 + 2 / 4 + 3 / 5) / 3            # 0.7
    first_two = (1 / 1 + 2 / 4) / 2             # calc_map_k, k=2: the first two relevant items
    assert daph_calc_map(*case) == pytest.approx(ap / 2, abs=1e-12)  # divided by both queries
    assert dcmh_calc_map(*case) == pytest.approx(ap / 2, abs=1e-12)
    assert dchmt_calc_map_k(*case) == pytest.approx(ap / 2, abs=1e-12)
    assert dchmt_calc_map_k(*case, k=2) == pytest.approx(first_two / 2, abs=1e-12)
    assert np.isnan(twdh_calc_map_k(*case, k=2))  # query 1's empty torch.mean makes the original NaN
    assert twdh_calc_map_k(query_codes[:1], retrieval_codes, query_labels[:1], retrieval_labels,
                           k=2) == pytest.approx(first_two, abs=1e-12)
    # the top 3 ranks hold one relevant item (rank 1): AP@3 = 1; query 1 adds 0
    assert calculate_top_map(*case, topk=3) == pytest.approx(1 / 2, abs=1e-12)
    assert calculate_top_map(*case, topk=4) == pytest.approx(first_two / 2, abs=1e-12)
    assert ap / 2 == pytest.approx(0.35) and first_two == pytest.approx(0.75)


def test_real_labels_match_ports():
    """MIRFLICKR-25K's labels (first 2,000 rows: 200 queries × 1,800 items), 8-bit codes that follow
    the labels (a random projection with noise), so rankings are meaningful and ties many."""
    labels = np.loadtxt(shared_data("mirflickr25k-meta", "all_labels.txt"), dtype=np.uint8, max_rows=2000)
    assert labels.shape == (2000, 24)
    rng = np.random.default_rng(7)
    scores = labels @ rng.standard_normal((24, 8)) + 0.7 * rng.standard_normal((2000, 8))
    codes = np.where(scores > 0, 1, -1).astype(np.int8)
    case = (codes[:200], codes[200:], labels[:200], labels[200:])
    got = variant_scores(*case)
    assert set(got) == {"dcmh_map", "dchmt_map", "djsrh_map@50", "daph_map"}  # K=5000 > 1,800 items: TwDH left out
    assert_scores(got, fitting(ports(*case), 1800), EXACT, "MIRFLICKR labels")
    assert_scores(got, fitting(ports(*case, dtype=torch.float32), 1800), FLOAT32, "MIRFLICKR labels, float32")
    # TwDH's calc_map_k where k is below most queries' R (the truncation it reports at 5000)
    t = as_torch(*case)
    relevant_counts = (labels[:200].astype(np.int64) @ labels[200:].T.astype(np.int64) > 0).sum(1)
    assert (relevant_counts > 300).mean() > 0.5
    assert twdh_calc_map_k(*case, k=300) == pytest.approx(
        float(port_twdh_calc_map_k(*t, k=300, dtype=torch.float64)), abs=EXACT)
    assert twdh_calc_map_k(*case, k=300) == pytest.approx(
        float(port_twdh_calc_map_k(*t, k=300)), abs=FLOAT32)


def test_blocks_of_queries_give_the_same_scores(monkeypatch):
    """A block of rows sorts exactly as one row at a time (the ports' per-query calls)."""
    case = random_case(3)
    whole = variant_scores(*case)
    monkeypatch.setattr(variants, "_BLOCK_CELLS", 1)  # one query per block
    assert variant_scores(*case) == whole


def test_variant_scores_selects_and_skips():
    qc, rc, ql, rl = random_case(4)
    assert list(VARIANTS) == ["dcmh_map", "dchmt_map", "twdh_map@5000", "djsrh_map@50", "daph_map"]
    from cmhbench.evaluation.variant_names import VARIANT_NAMES

    assert tuple(VARIANTS) == VARIANT_NAMES  # the torch-free list specs check definitions against
    for name, variant in VARIANTS.items():
        assert isinstance(variant, MetricVariant) and variant.name == name and variant.title and variant.source
        assert isinstance(variant.compute(qc, rc, ql, rl), float)
    assert set(variant_scores(qc, rc, ql, rl, names=["daph_map"])) == {"daph_map"}
    # a top-K variant is left out where K exceeds the retrieval set, named or not
    small = (qc, rc[:49], ql, rl[:49])
    assert set(variant_scores(*small)) == {"dcmh_map", "dchmt_map", "daph_map"}
    assert variant_scores(*small, names=["djsrh_map@50"]) == {}
    with pytest.raises(CmhbenchError, match="unknown metric variant.*'map@9'.*known: dcmh_map"):
        variant_scores(qc, rc, ql, rl, names=["map@9"])
    with pytest.raises(CmhbenchError, match="retrieval_codes"):
        variant_scores(qc, rc[:, :-1], ql, rl)
    with pytest.raises(CmhbenchError, match="k=0"):
        dchmt_calc_map_k(qc, rc, ql, rl, k=0)


def test_dcmh_map_is_cmhbench_map_over_all_queries():
    """DCMH's MATLAB mAP ranks as cmhbench does (stable, by retrieval index) and divides by every
    query: cmhbench's map times the share of queries with a relevant item, on every random case."""
    from cmhbench.evaluation.evaluator import evaluate

    for seed in range(20):
        qc, rc, ql, rl = random_case(seed)
        ours = evaluate(qc, rc, ql, rl, device="cpu")
        share = 1 - ours["queries_without_relevant"] / ours["num_queries"]
        assert dcmh_calc_map(qc, rc, ql, rl) == pytest.approx(ours["map"] * share, abs=EXACT)


def test_scoring_gives_every_variant_as_computed_on_its_own():
    """`score_codes` derives dcmh_map from the evaluator's pass instead of sorting again: every
    variant it records, in the same order, equals the variant computed by itself (ties and queries
    without a relevant item included)."""
    from cmhbench.evaluation.scoring import score_codes

    for seed in range(20):
        qc, rc, ql, rl = random_case(seed)
        recorded = score_codes({"image": qc}, {"image": rc}, ql, rl, ["i2i"], device="cpu")["i2i"]["variants"]
        alone = {name: value for name, value in variant_scores(qc, rc, ql, rl).items() if np.isfinite(value)}
        assert list(recorded) == list(alone), f"seed {seed}"
        assert_scores(recorded, alone, EXACT, f"seed {seed}")
