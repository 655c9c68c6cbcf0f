"""The retrieval benchmark's record (what `--out` writes and the leaderboard reads) and its table."""

from __future__ import annotations

import os
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from cmhbench.results import provenance
from cmhbench.retrieval.bench import Measurement, as_dicts

RECORD_KIND = "cmhbench-retrieval-bench"


def bench_record(measured: list[Measurement]) -> dict[str, Any]:
    environment = provenance.environment(torch.device("cpu"))
    machine = {key: environment.get(key) for key in ("cpu_model", "cpu", "host", "platform")}
    machine["cores"] = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"kind": RECORD_KIND, "version": 1, "created_utc": provenance.utc_now(), "machine": machine,
            "threads": 1, "measurements": as_dicts(measured)}


def print_measurements(console: Console, measured: list[Measurement]) -> None:
    table = Table(title="retrieval cost (one query at a time, one thread)")
    for column in ("codes", "items", "bits", "index", "parameters", "build s", "bytes/item", "median ms", "p99 ms",
                   f"recall@{measured[0].k if measured else 'k'}"):
        table.add_column(column, justify="left" if column in ("codes", "index", "parameters") else "right")
    for m in measured:
        table.add_row(m.codes, f"{m.items:,}", str(m.bits), m.index, m.parameters, f"{m.build_seconds:.3f}",
                      f"{m.bytes_per_item:.1f}", f"{m.latency_median_ms:.3f}", f"{m.latency_p99_ms:.3f}",
                      f"{m.recall:.3f}")
    console.print(table)
