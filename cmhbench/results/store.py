"""Result files: identity (run_id), location, atomic writing, existence checks."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Mapping

from cmhbench.errors import CmhbenchError
from cmhbench.fsutil import write_json_atomic
from cmhbench.results.run_result import RunResult

#: the version of a run's definition (what its run_id hashes); the result file's own schema version is
#: cmhbench.results.run_result.SCHEMA_VERSION, so a new result field never moves a run_id
DEFINITION_VERSION = 1


def run_definition(*, method: str, hyperparameters: Mapping[str, Any], preset: str | None,
                   dataset: Mapping[str, Any], protocol: Mapping[str, Any], bits: int, seed: int,
                   epoch_override: int | None, encoders: Mapping[str, Any],
                   directions: list[str], precision: str | None = None,
                   origin: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The fields that define a run (and nothing about when or where it ran): its run_id hashes
    these. The runner builds it before training; the leaderboard rebuilds it from a result file
    to check that the file's run_id matches its content. ``precision`` is the one asked for
    (``--precision bf16|fp32``); the default (auto: the method's choice for the device) adds no
    key, so results from before precision was part of the identity keep their run_id. ``origin``
    (codes submitted from outside, `cmhbench submit`) likewise adds a key only where given."""
    extra = {"precision": precision} if precision else {}
    if origin:
        extra["origin"] = dict(origin)
    return {**extra,
        "schema_version": DEFINITION_VERSION,
        "method": {"name": method, "hyperparameters": dict(hyperparameters), "preset": preset},
        "dataset": _dataset_identity(dataset),
        "protocol": dict(protocol),
        "bits": int(bits),
        "seed": int(seed),
        "epoch_override": epoch_override,
        "encoders": dict(encoders),
        "directions": list(directions),
    }


def _dataset_identity(dataset: Mapping[str, Any]) -> dict[str, Any]:
    identity = {key: dataset[key] for key in ("name", "version", "sha256", "options", "split_sizes")}
    if "captions_sha256" in dataset:  # only runs that read captions have it: no earlier run moved
        identity["captions_sha256"] = dataset["captions_sha256"]
    return identity


def definition_of_result(result: Mapping[str, Any]) -> dict[str, Any]:
    """`run_definition` rebuilt from a result file (its metrics' keys are the run's directions)."""
    return run_definition(
        method=result["method"]["name"], hyperparameters=result["method"]["hyperparameters"],
        preset=result["method"].get("preset"), dataset={"options": {}, **result["dataset"]},
        protocol=result["protocol"], bits=result["bits"], seed=result["seed"],
        epoch_override=result.get("epoch_override"), encoders=result["encoders"],
        directions=list(result["metrics"]), precision=result.get("precision_requested"),
        origin=result.get("origin"))


#: the measured part of a result: what training, encoding and scoring produced
MEASURED_FIELDS = ("metrics", "codes", "diagnostics", "training", "artifacts", "timings", "peak_memory",
                   "codes_file", "evaluator")


def content_digest(result: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of a result's measured fields, stored as ``content_sha256``:
    the run_id covers what defines a run, this covers what it measured, so an edited mAP is
    refused as surely as an edited configuration."""
    measured = {key: result[key] for key in MEASURED_FIELDS if key in result}
    canonical = json.dumps(measured, sort_keys=True, separators=(",", ":"), default=str, allow_nan=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def compute_run_id(definition: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of everything that defines a run (not of when/where it ran)."""
    canonical = json.dumps(definition, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


class ResultStore:
    """A results folder: ``<root>/<dataset>/<method>/<bits>bits-seed<seed>-<run_id[:12]>.json``;
    checkpoints of unfinished runs under ``<root>/.checkpoints/<run_id>/``."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def result_path(self, definition: Mapping[str, Any], run_id: str) -> Path:
        return (self.root / definition["dataset"]["name"] / definition["method"]["name"]
                / f"{definition['bits']}bits-seed{definition['seed']}-{run_id[:12]}.json")

    def checkpoint_dir(self, run_id: str) -> Path:
        return self.root / ".checkpoints" / run_id

    def write(self, path: Path, result: "RunResult | Mapping[str, Any]") -> Path:
        return write_json_atomic(path, result.to_dict() if isinstance(result, RunResult) else result)

    @staticmethod
    def read(path: str | Path) -> dict[str, Any]:
        path = Path(path)
        try:
            with open(path, encoding="utf-8") as handle:
                return json.load(handle)
        except FileNotFoundError:
            raise CmhbenchError(f"result file {path} does not exist") from None
        except json.JSONDecodeError as exc:
            raise CmhbenchError(f"result file {path} is not valid JSON ({exc})") from None
        except UnicodeDecodeError as exc:
            raise CmhbenchError(f"result file {path} is not UTF-8 text (byte {exc.start})") from None
        except OSError as exc:  # a folder, unreadable, ...
            raise CmhbenchError(f"result file {path} cannot be read: {exc.strerror or exc}") from None

    def all_results(self) -> list[Path]:
        return sorted(p for p in self.root.rglob("*.json") if ".checkpoints" not in p.parts)

    @staticmethod
    def read_typed(path: str | Path) -> RunResult:
        return RunResult.from_dict(ResultStore.read(path))
