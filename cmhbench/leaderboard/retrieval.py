"""The board's retrieval-cost section: `cmhbench retrieval-bench --out` files, checked, grouped by
code length, with the machine each was measured on."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cmhbench.errors import CmhbenchError
from cmhbench.retrieval.report import RECORD_KIND

_FIELDS = {"codes": str, "index": str, "items": int, "bits": int, "queries": int, "k": int,
           "build_seconds": (int, float), "bytes_per_item": (int, float), "latency_median_ms": (int, float),
           "latency_p99_ms": (int, float), "recall": (int, float), "parameters": str}


@dataclass
class RetrievalBench:
    file: str
    machine: str
    measurements: list[dict[str, Any]]

    def bits(self) -> list[int]:
        return sorted({m["bits"] for m in self.measurements})


def machine_label(machine: dict[str, Any]) -> str:
    model = machine.get("cpu_model") or machine.get("cpu") or "unknown CPU"
    return f"{model}, {machine.get('cores', '?')} cores, timed on one thread ({machine.get('host', '?')})"


def load_retrieval(paths: list[str | Path]) -> list[RetrievalBench]:
    return [_load(Path(path)) for path in paths]


def _load(path: Path) -> RetrievalBench:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CmhbenchError(f"--retrieval {path}: cannot be read as JSON ({exc})") from None
    if not isinstance(record, dict) or record.get("kind") != RECORD_KIND:
        raise CmhbenchError(f"--retrieval {path}: not a `cmhbench retrieval-bench --out` file (kind should be "
                            f"{RECORD_KIND!r})")
    measurements = record.get("measurements")
    if not isinstance(measurements, list) or not measurements:
        raise CmhbenchError(f"--retrieval {path}: key 'measurements' should be a non-empty list")
    for number, measurement in enumerate(measurements):
        for key, kind in _FIELDS.items():
            if not isinstance(measurement, dict) or not isinstance(measurement.get(key), kind) \
                    or isinstance(measurement.get(key), bool):
                raise CmhbenchError(f"--retrieval {path}: measurements[{number}].{key} is missing or not "
                                    f"{getattr(kind, '__name__', 'a number')}")
    return RetrievalBench(path.name, machine_label(record.get("machine") or {}), measurements)
