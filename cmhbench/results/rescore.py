"""`cmhbench rescore`: re-score stored codes under the current evaluator, rewriting the results.

A change of metric set or of a metric's definition then reaches every stored result without
training: each result with codes is re-derived (cmhbench.results.verify.rederive: the codes file
must be the one the result names, its labels the pinned ones), records the evaluator version it
was scored with and gets its content digest again; the file is replaced atomically.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from cmhbench.results import content_digest
from cmhbench.results.run_result import RunResult
from cmhbench.results.store import ResultStore
from cmhbench.results.verify import NotVerifiable, first_difference, rederive


@dataclass
class Rescored:
    path: Path
    status: str  # "rescored", "unchanged", "skipped"
    detail: str = ""


def rescore(paths: Iterable[str | Path], device: Any = "cpu") -> list[Rescored]:
    from cmhbench.leaderboard.load import read_result, result_files, validate

    outcomes = []
    for path in result_files(paths):
        data, reason = read_result(path)
        reason = reason or validate(data)
        if reason:
            outcomes.append(Rescored(path, "skipped", reason))
            continue
        result = RunResult.from_dict(data)
        if not result.has_codes:
            outcomes.append(Rescored(path, "skipped", "no stored codes (a result from before codes were kept)"))
            continue
        try:
            again = rederive(result, path, device)
        except NotVerifiable as exc:
            outcomes.append(Rescored(path, "skipped", str(exc)))
            continue
        again.content_sha256 = content_digest(again.to_dict())
        if again.to_dict() == data:
            outcomes.append(Rescored(path, "unchanged"))
            continue
        ResultStore(path.parent).write(path, again)
        outcomes.append(Rescored(path, "rescored", _what_changed(data["metrics"], again.metrics)))
    return outcomes


def _what_changed(before: dict[str, Any], after: dict[str, Any]) -> str:
    """What a rewrite changed: metrics added, and the first stated number its codes did not give."""
    added = sorted({key for direction, metrics in after.items() for key in metrics
                    if key not in before.get(direction, {})})
    parts = [f"added {', '.join(added)}"] if added else []
    differed = first_difference(before, after)
    if differed:
        parts.append(f"the file stated another number at {differed}")
    return "; ".join(parts) or "metrics re-derived"

