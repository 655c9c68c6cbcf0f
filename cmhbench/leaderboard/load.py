"""Reading result files for the leaderboard: validate, re-derive from codes, de-duplicate.

A file is accepted only if it passes the published JSON schema (``cmhbench/results/
run-result.schema.json``: types, required fields, every rate within [0, 1]), its run_id is the hash
of its own defining fields (so a hand-edited configuration cannot pose as another run), and its
measured fields hash to its ``content_sha256`` (so an accidental edit is refused too), every metric is
a finite number, and its metrics are internally consistent.

Then the board never shows a number it did not derive: a result with stored codes is re-scored from
them with the current evaluator (cmhbench.results.verify), and refused, naming the metric, where the
file states something its codes do not give or its codes were scored against other labels; what is
shown is the re-derived result. A result without codes (written before they were kept) is
*unverified*: shown in a row of its own, never averaged with verified ones, and refused under
``strict``.

Several files of one run_id merge into one entry when they give the same metrics (the same run
copied between machines). Where they differ, the environment decides: results from environments
whose arithmetic differs (CPU kernels, thread count, library versions: `reproducibility_key`) are
*replicates*, shown as their mean with their spread; results that differ from one environment are a
conflict: all of them are rejected, each with the reason, and the board says how many.
"""

from __future__ import annotations

import json
import math
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from cmhbench.errors import CmhbenchError
from cmhbench.results import RunResult, compute_run_id, content_digest, definition_of_result
from cmhbench.results.environment import reproducibility_key
from cmhbench.results.verify import NotVerifiable, first_difference, verified

SCHEMA_FILE = "run-result.schema.json"


@lru_cache(maxsize=1)
def result_schema() -> dict[str, Any]:
    return json.loads(resources.files("cmhbench.results").joinpath(SCHEMA_FILE).read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def _validator():
    import jsonschema

    return jsonschema.Draft202012Validator(result_schema())  # built once, not per file


@dataclass
class Entry:
    path: Path
    #: what the board shows: the re-derived result (for replicates, their mean), as a plain dict
    result: dict[str, Any]
    duplicates: list[Path] = field(default_factory=list)
    #: re-scored from its stored codes (False: a result without codes, shown apart as unverified)
    verified: bool = True
    #: the other runs of this run_id from other environments: (path, re-derived result)
    replicates: list[tuple[Path, dict[str, Any]]] = field(default_factory=list)
    #: how many environments gave this entry's metrics (its file and its duplicates): 2 or more is a
    #: run reproduced elsewhere
    environments: int = 1

    @property
    def run_id(self) -> str:
        return self.result["run_id"]


@dataclass
class LoadReport:
    entries: list[Entry]
    rejected: list[tuple[Path, str]]
    merged: int  # files folded into another file of the same run_id
    unverified: int = 0  # entries without stored codes


def result_files(paths: Iterable[str | Path]) -> list[Path]:
    """Files named directly, and every *.json under named folders (skipping hidden folders such as
    .checkpoints, .jobs and .sweeps, which hold bookkeeping, not results)."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(p for p in sorted(path.rglob("*.json"))
                         if not any(part.startswith(".") for part in p.relative_to(path).parts))
        elif path.exists() or path.is_symlink():
            found.append(path)  # a file named directly; read_result refuses anything but a regular one
        else:
            raise CmhbenchError(f"result path {path} does not exist")
    return found


#: far above any real result (tens of KB): a bigger file is refused unread
MAX_RESULT_BYTES = 16 * 1024**2


def read_result(path: Path) -> tuple[Any, str | None]:
    """(the parsed file, None) or (None, the reason it cannot be read). Only regular files of a
    bounded size are opened: a FIFO would block and /dev/zero never ends."""
    try:
        info = path.stat()
    except OSError as exc:
        return None, f"cannot be read ({exc.strerror})"
    if not stat.S_ISREG(info.st_mode):
        return None, "not a regular file (a device, FIFO or socket, or a link to one)"
    if info.st_size > MAX_RESULT_BYTES:
        return None, f"{info.st_size:,} bytes, more than a result can be ({MAX_RESULT_BYTES:,})"
    try:
        return json.loads(path.read_text(encoding="utf-8")), None
    except RecursionError:
        return None, "nested too deeply to be a result"
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"not valid JSON ({exc})"


def validate(result: Any) -> str | None:
    """The reason a parsed result file is not acceptable, or None."""
    error = next(iter(sorted(_validator().iter_errors(result), key=lambda e: list(e.absolute_path))), None)
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path) or "(top level)"
        return f"schema: {where}: {error.message[:200]}"
    expected = compute_run_id(definition_of_result(result))
    if expected != result["run_id"]:
        return (f"run_id {result['run_id'][:12]}… does not match the file's content (expected "
                f"{expected[:12]}…): the file was edited or is not a cmhbench result")
    if "content_sha256" not in result:
        return "no content_sha256: the measured fields cannot be checked (written before results carried one)"
    if content_digest(result) != result["content_sha256"]:
        return ("content_sha256 does not match the measured fields (metrics, codes, training, timings, ...): "
                "the file was edited after the run wrote it")
    where = _non_finite(result["metrics"], "metrics")
    if where:
        return f"{where}: not a finite number"
    sizes = result["dataset"].get("split_sizes") or {}
    for direction, metrics in result["metrics"].items():
        reason = _inconsistency(metrics) or _against_splits(metrics, sizes)
        if reason:
            return f"metrics/{direction}: {reason}"
    return None


def _against_splits(m: dict[str, Any], sizes: dict[str, int]) -> str | None:
    """What the metrics say they were computed over, against the split sizes the run records."""
    for key, split in (("num_queries", "query"), ("num_retrieval", "retrieval")):
        if key in m and split in sizes and m[key] != sizes[split]:
            return f"{key} = {m[key]} but the run's {split} split has {sizes[split]} items"
    limit = sizes.get("retrieval")
    bad = [k for k in m["map_at"] if not k.isdigit() or int(k) < 1 or (limit and int(k) > limit)]
    if bad:
        return f"map_at has K = {bad[0]}, outside 1..{limit} (the retrieval set's size)"
    return None


def _non_finite(value: Any, where: str) -> str | None:
    """The path of the first NaN or ±inf in a nested structure (JSON allows them as an extension)."""
    if isinstance(value, float) and not math.isfinite(value):
        return where
    if isinstance(value, dict):
        return next((found for key, item in value.items() if (found := _non_finite(item, f"{where}/{key}"))), None)
    if isinstance(value, list):
        return next((found for i, item in enumerate(value) if (found := _non_finite(item, f"{where}/{i}"))), None)
    return None


def _inconsistency(m: dict[str, Any]) -> str | None:
    if len(m["precision_at"]["k"]) != len(m["precision_at"]["value"]):
        return "precision_at: k and value differ in length"
    pr = m["pr_by_radius"]
    if not len(pr["radius"]) == len(pr["precision"]) == len(pr["recall"]):
        return "pr_by_radius: radius, precision and recall differ in length"
    if any(b < a - 1e-9 for a, b in zip(pr["recall"], pr["recall"][1:], strict=False)):
        return "pr_by_radius: recall decreases with the radius"
    if "num_queries" in m and m["queries_without_relevant"] > m["num_queries"]:
        return "queries_without_relevant exceeds num_queries"
    if "num_queries" in m and m["lookup_r2"]["empty_queries"] > m["num_queries"]:
        return "lookup_r2.empty_queries exceeds num_queries"
    return None


def load_results(paths: Iterable[str | Path], strict: bool = False) -> LoadReport:
    """Every acceptable result under ``paths``, re-derived; ``strict`` also refuses the unverified."""
    by_run: dict[tuple[str, bool], list[Entry]] = {}  # verified and unverified files of a run_id apart
    rejected: list[tuple[Path, str]] = []
    for path in result_files(paths):
        entry, reason = read_entry(path, strict)
        if reason:
            rejected.append((path, reason))
        else:
            by_run.setdefault((entry.run_id, entry.verified), []).append(entry)
    entries: list[Entry] = []
    merged = 0
    for group in by_run.values():
        entry, conflict, folded = merge_run(group)
        merged += folded
        if conflict:
            rejected += [(e.path, conflict) for e in group]
        else:
            entries.append(entry)
    return LoadReport(sorted(entries, key=lambda e: str(e.path)), rejected, merged,
                      sum(not e.verified for e in entries))


def read_entry(path: Path, strict: bool) -> tuple[Entry | None, str | None]:
    """(the entry, None) or (None, why the file is refused)."""
    result, reason = read_result(path)
    if reason is None:
        try:
            reason = validate(result)
        except RecursionError:
            reason = "nested too deeply to be a result"
    if reason:
        return None, reason
    typed = RunResult.from_dict(result)
    if not typed.has_codes:
        if result["schema_version"] != 1:  # only results from before codes were kept may lack them
            return None, "no codes_file: a schema-2 result always names its codes"
        if strict:
            return None, "no stored codes: its numbers cannot be re-derived (unverified; refused under --strict)"
        return Entry(path, result, verified=False), None
    try:
        return Entry(path, verified(typed, path).to_dict()), None
    except NotVerifiable as exc:
        return None, f"not verified: {exc}"


def merge_run(group: list[Entry]) -> tuple[Entry | None, str | None, int]:
    """One run_id's files -> (its entry, None, files folded) or (None, the conflict, 0).

    Same metrics: one entry, the newest, the others its duplicates. Different metrics from different
    environments: replicates, shown as their mean. Different metrics from one environment: a conflict."""
    group = sorted(group, key=lambda e: e.result["created_utc"], reverse=True)
    distinct: list[list[Entry]] = []  # files grouped by the metrics they give
    for entry in group:
        same = next((g for g in distinct if first_difference(g[0].result["metrics"], entry.result["metrics"]) is None),
                    None)
        if same is None:
            distinct.append([entry])
        else:
            same.append(entry)
    heads = [g[0] for g in distinct]
    keys = [{reproducibility_key(e.result.get("environment") or {}) for e in g} for g in distinct]
    if sum(len(k) for k in keys) > len(set().union(*keys)):  # one environment gave two sets of metrics
        paths = ", ".join(str(h.path) for h in heads)
        return None, (f"conflict: files of run_id {group[0].run_id[:12]}… give different metrics from one "
                      f"environment ({paths}); none of them is shown"), 0
    newest = heads[0]
    newest.duplicates = [e.path for g in distinct for e in g[1:]]
    newest.environments = len(keys[0])
    if len(heads) > 1:
        newest.replicates = [(h.path, h.result) for h in heads[1:]]
        newest.result = {**newest.result, "metrics": mean_metrics([h.result["metrics"] for h in heads]),
                         "replicates": len(heads)}
    return newest, None, len(group) - len(heads)


def mean_metrics(all_metrics: list[Any]) -> Any:
    """The element-wise mean of several results' metrics (same structure; counts kept from the first)."""
    first = all_metrics[0]
    if isinstance(first, dict):
        return {key: mean_metrics([m[key] for m in all_metrics]) if all(isinstance(m, dict) and key in m
                                                                       for m in all_metrics) else value
                for key, value in first.items()}
    if isinstance(first, list) and all(isinstance(m, list) and len(m) == len(first) for m in all_metrics):
        return [mean_metrics([m[i] for m in all_metrics]) for i in range(len(first))]
    if isinstance(first, float) and all(isinstance(m, (int, float)) for m in all_metrics):
        return math.fsum(all_metrics) / len(all_metrics)
    return first
