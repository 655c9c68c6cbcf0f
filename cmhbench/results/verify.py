"""Re-deriving a result from its stored codes: the board's and `rescore`'s one way to a number.

A result's metrics, code statistics and chance levels are recomputed from the codes file beside it
with the current evaluator, never read from the file. Before that, the codes file must be the one
the result names (sha256 and size), hold the result's splits (sizes, bits), and its labels must be
the ones the result pins (``dataset.labels_sha256``) and, for a dataset whose canonical labels the
installed plugins know, those canonical labels: codes scored against shuffled labels are refused.
"""

from __future__ import annotations

import hashlib
import json
import math
import stat
from dataclasses import replace
from pathlib import Path
from typing import Any

from cmhbench.errors import CmhbenchError
from cmhbench.evaluation.directions import DIRECTIONS
from cmhbench.results.codes_file import StoredCodes, file_sha256, read_codes
from cmhbench.results.label_pins import pinned_label_digests
from cmhbench.results.run_result import RunResult

#: stored and re-scored metrics may differ by float noise (a GPU's reduction order) and no more
TOLERANCE = 1e-6


class NotVerifiable(CmhbenchError):
    """A result that cannot be re-derived: its codes are missing, altered or inconsistent."""


#: far above any real codes file (NUS-WIDE at 64 bits: 3.8 MB; 10^7 items at 128 bits: 320 MB)
MAX_CODES_BYTES = 1024**3


def codes_file_of(result: RunResult, result_path: Path) -> Path:
    name = (result.codes_file or {}).get("name")
    if not isinstance(name, str) or name in ("", ".", "..") or Path(name).name != name:
        raise NotVerifiable(f"codes_file.name {name!r} is not a file name beside the result")
    return result_path.with_name(name)


def load_codes(result: RunResult, result_path: Path) -> StoredCodes:
    """The result's codes, checked against the record the result keeps of them and its splits."""
    path = codes_file_of(result, result_path)
    try:
        info = path.lstat()
    except FileNotFoundError:
        raise NotVerifiable(f"its codes file {path.name} is missing (copy it beside the result)") from None
    if not stat.S_ISREG(info.st_mode):  # a link could point anywhere; a FIFO would block
        raise NotVerifiable(f"codes file {path.name} is not a regular file (a link, folder or device)")
    record = result.codes_file or {}
    if info.st_size > MAX_CODES_BYTES:
        raise NotVerifiable(f"codes file {path.name} has {info.st_size:,} bytes, more than a codes file can be")
    if info.st_size != record.get("bytes") or file_sha256(path) != record.get("sha256"):
        raise NotVerifiable(f"codes file {path.name} is not the one the result was written with (sha256/size differ)")
    try:
        stored = read_codes(path)
    except CmhbenchError as exc:
        raise NotVerifiable(str(exc)) from None
    if stored.bits != result.bits:
        raise NotVerifiable(f"codes file {path.name} holds {stored.bits}-bit codes; the result is {result.bits} bits")
    sizes = result.dataset.get("split_sizes") or {}
    for split, ids in stored.ids.items():
        if not len(ids) or (split in sizes and len(ids) != sizes[split]):
            raise NotVerifiable(f"codes file {path.name} has {len(ids)} {split} items; the split has "
                                f"{sizes.get(split, 'at least one')}")
    for direction in result.directions:
        source, target = DIRECTIONS.get(direction, (None, None))
        if source not in stored.codes["query"] or target not in stored.codes["retrieval"]:
            raise NotVerifiable(f"codes file {path.name} cannot score {direction}: it needs query {source} and "
                                f"retrieval {target} codes")
    check_labels(result, stored, path)
    return stored


def check_labels(result: RunResult, stored: StoredCodes, path: Path) -> None:
    from cmhbench.evaluation.scoring import labels_digest

    actual = {split: labels_digest(labels) for split, labels in stored.labels.items()}
    recorded = result.dataset.get("labels_sha256") or {}
    for split, digest in actual.items():
        if recorded.get(split) != digest:
            raise NotVerifiable(f"codes file {path.name}: the {split} labels are not the ones the result pins "
                                "(dataset.labels_sha256)")
    try:
        canonical = pinned_label_digests(result.dataset)
    except CmhbenchError as exc:
        raise NotVerifiable(str(exc)) from None
    for split, digest in (canonical or {}).items():
        if split in actual and actual[split] != digest:
            raise NotVerifiable(f"the {split} labels it was scored against are not {result.dataset_name}'s canonical "
                                f"labels (shuffled or edited; canonical digest {digest[:12]}…)")


def rederive(result: RunResult, result_path: Path, device: Any = "cpu", stored: StoredCodes | None = None
             ) -> RunResult:
    """The result with every derived field recomputed from its codes (raises NotVerifiable);
    ``stored``: its codes, when the caller has loaded them with `load_codes` already."""
    from cmhbench.evaluation.scoring import derived_fields

    stored = stored or load_codes(result, result_path)
    cache = _derived_cache_path(result)
    derived = _read_cached(cache)
    if derived is None:
        try:
            derived = derived_fields(stored.codes["query"], stored.codes["retrieval"], stored.labels["query"],
                                     stored.labels["retrieval"], result.directions, device)
        except CmhbenchError as exc:  # codes the evaluator refuses: the file is refused, the board goes on
            raise NotVerifiable(f"its codes cannot be scored: {exc}") from None
        _write_cached(cache, derived)
    return replace(result, metrics=derived["metrics"], codes=derived["codes"], evaluator=derived["evaluator"])


def _derived_cache_path(result: RunResult) -> Path:
    """Where this cmhbench keeps what it derived from one codes file (its content, which holds the
    labels, the directions and the evaluator version name it), so that a board of large datasets is
    not re-scored from scratch at every build: the numbers are still this code's own derivation."""
    from cmhbench.evaluation.scoring import EVALUATOR_VERSION
    from cmhbench.fsutil import cache_home

    key = json.dumps([(result.codes_file or {}).get("sha256"), result.directions, EVALUATOR_VERSION])
    return cache_home() / "derived" / f"{hashlib.sha256(key.encode()).hexdigest()}.json"


def _read_cached(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _write_cached(path: Path, derived: dict[str, Any]) -> None:
    from cmhbench.fsutil import write_json_atomic

    try:
        write_json_atomic(path, derived, durable=False)
    except (OSError, CmhbenchError):  # a read-only cache only costs the next build its time
        pass


#: not compared: the papers' variants rank ties with their originals' unstable sorts, which order ties
#: differently under another numpy/torch build or CPU (shown re-derived all the same)
NOT_COMPARED = ("variants",)


def first_difference(stored: Any, derived: Any, where: str = "metrics") -> str | None:
    """The path of the first number the file states that its re-scoring does not give: a leaf the
    file has and the re-scoring has too (a metric the current evaluator no longer computes is not
    compared; it is not shown either), the tie-order-dependent variants left out."""
    if isinstance(stored, dict) and isinstance(derived, dict):
        for key in stored:
            if key in NOT_COMPARED or key not in derived:
                continue
            if found := first_difference(stored[key], derived[key], f"{where}/{key}"):
                return found
        return None
    if isinstance(stored, list) and isinstance(derived, list):
        if len(stored) != len(derived):
            return f"{where} (length {len(stored)}, re-scored {len(derived)})"
        return next((found for i, (a, b) in enumerate(zip(stored, derived, strict=True))
                     if (found := first_difference(a, b, f"{where}/{i}"))), None)
    if isinstance(stored, bool) or isinstance(derived, bool):
        return None if stored == derived else f"{where} ({stored} in the file, {derived} re-scored)"
    if isinstance(stored, (int, float)) and isinstance(derived, (int, float)):
        if math.isclose(stored, derived, rel_tol=TOLERANCE, abs_tol=TOLERANCE):
            return None
        return f"{where} ({stored:.6g} in the file, {derived:.6g} re-scored)"
    return None if stored == derived else f"{where} ({str(stored)[:40]} in the file, {str(derived)[:40]} re-scored)"


def verified(result: RunResult, result_path: Path, device: Any = "cpu") -> RunResult:
    """The re-derived result, refused (NotVerifiable naming the metric) where the file states a
    metric its codes do not give."""
    again = rederive(result, result_path, device)
    difference = first_difference(result.metrics, again.metrics)
    if difference:
        version = (result.evaluator or {}).get("version")
        hint = ("" if version == (again.evaluator or {}).get("version")
                else f"; it was scored by evaluator version {version}: `cmhbench rescore` it")
        raise NotVerifiable(f"{difference}: the stored metric is not what its codes give{hint}")
    return again
