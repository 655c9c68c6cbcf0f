"""RunResult: one JSON file per (method, dataset, bits, seed) run, with provenance."""

from cmhbench.results.run_result import SCHEMA_VERSION, RunResult
from cmhbench.results.store import (ResultStore, compute_run_id, content_digest, definition_of_result,
                                    run_definition)

__all__ = ["ResultStore", "RunResult", "SCHEMA_VERSION", "compute_run_id", "content_digest", "definition_of_result",
           "run_definition"]
