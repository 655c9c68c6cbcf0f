"""`cmhbench reproduce`: run a result's run again from what it records, and compare the codes.

The run is planned from the result's own definition (method, hyper-parameters, preset, dataset and
its options, encoders, bits, seed, epoch budget, precision, directions), must plan to the recorded
run_id, trains in a folder of its own on as many CPU threads as the result records (the order of
float sums depends on it), and its codes are compared with the stored ones: identical
bit for bit where the environment matches (docs: reproducibility conditions in the README),
otherwise the share of agreeing bits and the metric differences say how far apart they are. A result
whose method was relabelled (and its run_id recomputed) trains the other method and so mismatches.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cmhbench.errors import CmhbenchError
from cmhbench.request import RunRequest
from cmhbench.results.environment import reproducibility_key
from cmhbench.results.run_result import RunResult
from cmhbench.results.verify import load_codes, rederive


def request_of_result(result: RunResult, results_dir: str | Path, device: str = "auto") -> RunRequest:
    """The request that defines a recorded run again (the inverse of what the runner records)."""
    image = result.encoders["image"]
    budget = result.epoch_override
    return RunRequest(
        method=result.method_name, dataset=result.dataset_name, bits=result.bits, seed=result.seed,
        epochs=None if budget == result.protocol.get("epochs") else budget,
        hparams=result.method["hyperparameters"], preset=result.method.get("preset") or "published",
        dataset_options=result.dataset.get("options") or {},
        image_encoder=None if image["name"] == "none" else image["name"],
        image_weights=None if image["name"] in ("none", "identity") else image["weights"],
        precision=result.precision_requested or "auto", directions=tuple(result.directions),
        results_dir=results_dir, device=device, quiet=True)


@dataclass
class Reproduction:
    identical: bool
    same_environment: bool
    #: split/modality -> share of bits equal between the recorded and the reproduced codes
    bit_agreement: dict[str, float] = field(default_factory=dict)
    #: direction -> reproduced mAP minus recorded mAP
    map_difference: dict[str, float] = field(default_factory=dict)
    result_path: Path | None = None


def reproduce(path: str | Path, results_dir: str | Path | None = None, device: str = "auto",
              threads: int | None = None) -> Reproduction:
    """Train the recorded run again and compare (see the module docstring). ``threads``: CPU threads
    for the run (default: the recorded ``environment.threads``); the process's count is restored after."""
    import torch

    from cmhbench.leaderboard.load import read_result, validate
    from cmhbench.runner import plan, run

    path = Path(path)
    data, reason = read_result(path)
    reason = reason or validate(data)
    if reason:
        raise CmhbenchError(f"{path}: {reason}")
    recorded = RunResult.from_dict(data)
    if recorded.is_outside:
        raise CmhbenchError(f"{path}: codes submitted from outside ({recorded.origin.get('name')}) cannot be trained "
                            "again here; reproduce them with the code that made them")
    if not recorded.has_codes:
        raise CmhbenchError(f"{path}: a result without stored codes (written before codes were kept) cannot be "
                            "compared; run it again with `cmhbench run` and compare the numbers")
    stored = load_codes(recorded, path)
    recorded = rederive(recorded, path, stored=stored)  # its numbers as its codes give them
    folder = Path(results_dir) if results_dir else Path(tempfile.mkdtemp(prefix="cmhbench-reproduce-"))
    request = request_of_result(recorded, folder, device)
    planned = plan(request)
    if planned.run_id != recorded.run_id:
        raise CmhbenchError(f"{path}: its recorded definition plans to run_id {planned.run_id[:12]}…, not "
                            f"{recorded.run_id[:12]}… (the installed plugins define this run differently)")
    if planned.path.exists():  # the run would be skipped, and the result compared with itself
        raise CmhbenchError(f"{planned.path} exists: reproduce into a folder without this run's result "
                            "(--results, default a new temporary folder)")
    before = torch.get_num_threads()
    threads = threads or (recorded.environment or {}).get("threads")
    try:
        if threads:
            torch.set_num_threads(int(threads))
        outcome = run(request)
    finally:
        torch.set_num_threads(before)
    again = RunResult.from_dict(outcome.result)
    fresh = load_codes(again, outcome.path)
    return compare(recorded, stored, again, fresh, outcome.path)


def compare(recorded: RunResult, stored: Any, again: RunResult, fresh: Any, path: Path | None) -> Reproduction:
    agreement: dict[str, float] = {}
    identical = True
    for split, by_modality in stored.codes.items():
        if not np.array_equal(stored.ids[split], fresh.ids[split]):
            raise CmhbenchError(f"the reproduced run's {split} split holds other items than the recorded one")
        for modality, codes in by_modality.items():
            other = fresh.codes[split][modality]
            agreement[f"{split} {modality}"] = float((codes == other).mean())
            identical &= bool(np.array_equal(codes, other))
    differences = {d: again.metrics[d]["map"] - recorded.metrics[d]["map"] for d in recorded.directions}
    same = reproducibility_key(recorded.environment or {}) == reproducibility_key(again.environment or {})
    return Reproduction(identical, same, agreement, differences, path)

