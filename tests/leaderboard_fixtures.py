"""Result files for leaderboard tests: complete, schema-valid, with run_ids computed as the runner
computes them, and metrics chosen by the test (so that aggregates can be computed by hand)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cmhbench.results import compute_run_id, content_digest, definition_of_result


def direction_metrics(map_value: float) -> dict[str, Any]:
    return {
        "map": map_value, "map_tie_aware": map_value, "map_chance": 0.1,
        "map_at": {"50": map_value, "1000": map_value},
        "precision_at": {"k": [1, 10, 100], "value": [min(1.0, map_value + 0.1), map_value, max(0.0, map_value - 0.1)]},
        "pr_by_radius": {"radius": [0, 1, 2], "precision": [0.9, 0.8, 0.7], "recall": [0.1, 0.2, 0.3]},
        "lookup_r2": {"precision": 0.7, "recall": 0.3, "f1": 0.42, "empty_queries": 1},
        "queries_without_relevant": 0, "num_queries": 10, "num_retrieval": 1000,
        # every query has a relevant item: DCMH's and DAPH's "mAP" are then ours up to tie order
        "variants": {"dcmh_map": map_value, "daph_map": map_value},
    }


def make_result(method: str = "dcmh", dataset: str = "toy", bits: int = 16, seed: int = 0,
                i2t: float = 0.5, t2i: float = 0.4, *, protocol_version: int = 1, dataset_version: str = "1:abc",
                hyperparameters: dict | None = None, command: str = "cmhbench run", epochs: int | None = 10,
                description: str = "a method", created: str = "2026-11-23T00:00:00Z", plugin: str = "test",
                rerun: str | None = None, dataset_options: dict | None = None,
                training_epochs: dict | None = None) -> dict[str, Any]:
    result = {
        "schema_version": 1,
        "run_id": "",
        "method": {"name": method, "description": description, "citation": "A. Author. Paper. 2026.",
                   "plugin": plugin, "hyperparameters": hyperparameters or {"lr": 0.1}, "preset": None},
        "dataset": {"name": dataset, "version": dataset_version, "sha256": {"generator": "00"},
                    "split_sizes": {"query": 10, "retrieval": 1000, "train": 50},
                    "options": dict(dataset_options or {})},
        "protocol": {"name": dataset, "version": protocol_version, "bits": [16, 32], "seeds": [0, 1, 2]},
        "bits": bits, "seed": seed, "epoch_override": epochs,
        "encoders": {"image": {"name": "alexnet", "weights": "none"}, "text": {"name": "identity", "weights": "none"}},
        "metrics": {"i2t": direction_metrics(i2t), "t2i": direction_metrics(t2i)},
        "training": {"history": [], "resumed_from": None, "precision": "fp32"},
        "timings": {"train_seconds": 1.0, "encode_seconds": 0.1, "evaluate_seconds": 0.1},
        "peak_memory": {},
        "environment": {"cmhbench": "0.1.0", "python": "3.11", "torch": "2.14.1", "cuda": None, "device": "cpu",
                        "gpu": None, "host": "test-host"},
        "git_commit": "0123456789abcdef", "command": command, "created_utc": created,
    }
    if rerun is not None:
        result["rerun"] = rerun
    if training_epochs is not None:
        result["training"]["epochs"] = training_epochs
    result["run_id"] = compute_run_id(definition_of_result(result))
    result["content_sha256"] = content_digest(result)
    return result


def write_result(folder: Path, result: dict[str, Any], name: str | None = None, stamp: bool = True) -> Path:
    """Write a result file; ``stamp`` recomputes its content digest, as the runner would have for
    the metrics the test chose (tests of tampering pass False)."""
    if stamp:
        result = {**result, "content_sha256": content_digest(result)}
    path = folder / (name or f"{result['method']['name'].encode().hex()[:16]}-{result['bits']}-{result['seed']}-{result['run_id'][:8]}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result))
    return path
