"""RunResult: one JSON file per (method, dataset, bits, seed) run, with provenance."""

from cmhbench.results.store import ResultStore, SCHEMA_VERSION, compute_run_id

__all__ = ["ResultStore", "SCHEMA_VERSION", "compute_run_id"]
