"""RunResult: one JSON file per (method, dataset, bits, seed) run, with provenance."""

from cmhbench.results.store import (SCHEMA_VERSION, ResultStore, compute_run_id, content_digest,
                                    definition_of_result, run_definition)

__all__ = ["ResultStore", "SCHEMA_VERSION", "compute_run_id", "content_digest", "definition_of_result",
           "run_definition"]
