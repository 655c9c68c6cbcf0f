"""The sweep manifest: the expanded grid, saved in the results folder so that `cmhbench status`
(on any machine sharing the folder) and workers started elsewhere see the same job list."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from cmhbench.errors import CmhbenchError
from cmhbench.fsutil import write_json_atomic
from cmhbench.sweep.spec import Job, SweepSpec


def sweeps_dir(results: str | Path) -> Path:
    return Path(results) / ".sweeps"


def sweep_id(jobs: list[Job]) -> str:
    """The same grid gives the same id on every machine: a hash of its sorted run_ids."""
    return hashlib.sha256("\n".join(sorted(j.run_id for j in jobs)).encode()).hexdigest()[:12]


def write_manifest(spec: SweepSpec, jobs: list[Job]) -> Path:
    """Save the grid with every path relative to the results folder, so that a copied, moved or
    remounted results folder (another machine, a cluster's other mount point) still reads."""
    identifier = sweep_id(jobs)
    name = spec.name or identifier
    results = Path(spec.results)
    path = sweeps_dir(results) / f"{name}.json"
    write_json_atomic(path, {"name": name, "sweep_id": identifier, "spec": {**asdict(spec), "results": "."},
                             "jobs": [_relative(job, results) for job in jobs]})
    return path


def _relative(job: Job, results: Path) -> dict[str, Any]:
    result_path = Path(job.result_path)
    try:
        result_path = result_path.resolve().relative_to(results.resolve())
    except ValueError:  # outside the results folder: kept as given
        pass
    return {**asdict(job), "request": {**job.request, "results_dir": "."}, "result_path": str(result_path)}


def read_manifest(path: str | Path) -> tuple[dict[str, Any], list[Job]]:
    """The manifest's jobs, their paths resolved against the results folder the manifest is in."""
    path = Path(path)
    if path.parent.name != sweeps_dir(".").name:
        raise CmhbenchError(f"sweep manifest {path} is not in a results folder's {sweeps_dir('.').name}/ folder: its "
                            "paths are relative to that results folder")
    results = path.parent.parent  # <results>/.sweeps/<name>.json
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
        jobs = [Job(**{**job, "request": {**job["request"], "results_dir": str(results)},
                       "result_path": str(results / job["result_path"])})
                for job in content["jobs"]]
    except FileNotFoundError:
        raise CmhbenchError(f"sweep manifest {path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise CmhbenchError(f"sweep manifest {path} is not a cmhbench sweep manifest ({exc})") from None
    return content, jobs


def find_manifests(results: str | Path, which: str | None = None) -> list[Path]:
    """Manifests in a results folder; ``which`` narrows to a name, a sweep id or a manifest path."""
    if which and Path(which).is_file() and Path(which).suffix == ".json":
        return [Path(which)]
    folder = sweeps_dir(results)
    manifests = sorted(folder.glob("*.json")) if folder.is_dir() else []
    if which:
        chosen = [p for p in manifests if p.stem == which or _sweep_id_of(p) == which]
        if not chosen:
            known = ", ".join(p.stem for p in manifests) or "none"
            raise CmhbenchError(f"no sweep {which!r} in {folder} (known: {known})")
        return chosen
    return manifests


def _sweep_id_of(path: Path) -> str | None:
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("sweep_id")
    except (OSError, json.JSONDecodeError):
        return None
