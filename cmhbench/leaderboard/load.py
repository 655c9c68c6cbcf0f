"""Reading result files for the leaderboard: validate, check, de-duplicate.

A file is accepted only if it passes the published JSON schema (``cmhbench/results/
run-result.schema.json``: types, required fields, every rate within [0, 1]), its run_id is the hash
of its own defining fields (so a hand-edited configuration cannot pose as another run), and its
measured fields hash to its ``content_sha256`` (so an edited metric is refused too), every metric is
a finite number, and its metrics are internally consistent. Everything else is rejected with the
reason. Several files of one run_id (the same run copied between machines, or rerun) merge into one
entry, the newest, when they report the same metrics; files of one run_id that disagree are a
conflict: all of them are rejected and reported, none is shown.
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
from cmhbench.results import compute_run_id, content_digest, definition_of_result

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
    result: dict[str, Any]
    duplicates: list[Path] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        return self.result["run_id"]


@dataclass
class LoadReport:
    entries: list[Entry]
    rejected: list[tuple[Path, str]]
    merged: int  # files folded into another file of the same run_id


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


def load_results(paths: Iterable[str | Path]) -> LoadReport:
    by_run: dict[str, Entry] = {}
    rejected: list[tuple[Path, str]] = []
    conflicted: set[str] = set()
    merged = 0
    for path in result_files(paths):
        result, reason = read_result(path)
        if reason is None:
            try:
                reason = validate(result)
            except RecursionError:
                reason = "nested too deeply to be a result"
        if reason:
            rejected.append((path, reason))
            continue
        entry = Entry(path, result)
        if entry.run_id in conflicted:
            rejected.append((path, f"run_id {entry.run_id[:12]}… is in conflict (see the other files)"))
            continue
        current = by_run.get(entry.run_id)
        if current is None:
            by_run[entry.run_id] = entry
            continue
        if current.result["metrics"] != result["metrics"]:
            # one run cannot have measured two things: neither file is believed
            conflicted.add(entry.run_id)
            del by_run[entry.run_id]
            for other in [current.path, *current.duplicates, path]:
                rejected.append((other, f"conflict: files of run_id {entry.run_id[:12]}… report different "
                                        f"metrics ({current.path} and {path}); neither is shown"))
            continue
        merged += 1
        newer, older = ((entry, current) if result["created_utc"] > current.result["created_utc"]
                        else (current, entry))
        newer.duplicates = current.duplicates + entry.duplicates + [older.path]
        by_run[entry.run_id] = newer
    return LoadReport(sorted(by_run.values(), key=lambda e: str(e.path)), rejected, merged)
