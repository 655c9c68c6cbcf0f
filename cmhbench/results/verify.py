"""Re-deriving a result from its stored codes: the board's and `rescore`'s one way to a number.

A result's metrics, code statistics and chance levels are recomputed from the codes file beside it
with the current evaluator, never read from the file. Before that, the codes file must be the one
the result names (sha256 and size), hold the result's splits (sizes, bits), and its labels must be
the ones the result pins (``dataset.labels_sha256``) and, for a dataset whose canonical labels the
installed plugins know, those canonical labels: codes scored against shuffled labels are refused.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

from cmhbench.errors import CmhbenchError
from cmhbench.results.codes_file import StoredCodes, file_sha256, read_codes
from cmhbench.results.label_pins import pinned_label_digests
from cmhbench.results.run_result import RunResult

#: stored and re-scored metrics may differ by float noise (a GPU's reduction order) and no more
TOLERANCE = 1e-6


class NotVerifiable(CmhbenchError):
    """A result that cannot be re-derived: its codes are missing, altered or inconsistent."""


def codes_file_of(result: RunResult, result_path: Path) -> Path:
    name = (result.codes_file or {}).get("name")
    if not isinstance(name, str) or not name or Path(name).name != name:
        raise NotVerifiable(f"codes_file.name {name!r} is not a file name beside the result")
    return result_path.with_name(name)


def load_codes(result: RunResult, result_path: Path) -> StoredCodes:
    """The result's codes, checked against the record the result keeps of them and its splits."""
    path = codes_file_of(result, result_path)
    if not path.is_file():
        raise NotVerifiable(f"its codes file {path.name} is missing (copy it beside the result)")
    record = result.codes_file or {}
    if path.stat().st_size != record.get("bytes") or file_sha256(path) != record.get("sha256"):
        raise NotVerifiable(f"codes file {path.name} is not the one the result was written with (sha256/size differ)")
    try:
        stored = read_codes(path)
    except CmhbenchError as exc:
        raise NotVerifiable(str(exc)) from None
    if stored.bits != result.bits:
        raise NotVerifiable(f"codes file {path.name} holds {stored.bits}-bit codes; the result is {result.bits} bits")
    sizes = result.dataset.get("split_sizes") or {}
    for split, ids in stored.ids.items():
        if split in sizes and len(ids) != sizes[split]:
            raise NotVerifiable(f"codes file {path.name} has {len(ids)} {split} items; the split has {sizes[split]}")
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
    canonical = pinned_label_digests(result.dataset)
    for split, digest in (canonical or {}).items():
        if split in actual and actual[split] != digest:
            raise NotVerifiable(f"the {split} labels it was scored against are not {result.dataset_name}'s canonical "
                                f"labels (shuffled or edited; canonical digest {digest[:12]}…)")


def rederive(result: RunResult, result_path: Path, device: Any = "cpu") -> RunResult:
    """The result with every derived field recomputed from its codes (raises NotVerifiable)."""
    from cmhbench.evaluation.scoring import derived_fields

    stored = load_codes(result, result_path)
    derived = derived_fields(stored.codes["query"], stored.codes["retrieval"], stored.labels["query"],
                             stored.labels["retrieval"], result.directions, device)
    return replace(result, metrics=derived["metrics"], codes=derived["codes"], evaluator=derived["evaluator"])


def first_difference(stored: Any, derived: Any, where: str = "metrics") -> str | None:
    """The path of the first number the file states that its re-scoring does not give: a leaf the
    file has and the re-scoring has too (a metric the current evaluator no longer computes is not
    compared; it is not shown either)."""
    if isinstance(stored, dict) and isinstance(derived, dict):
        for key in stored:
            if key in derived and (found := first_difference(stored[key], derived[key], f"{where}/{key}")):
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
