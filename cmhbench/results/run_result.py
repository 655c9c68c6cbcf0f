"""RunResult: the one typed view of a result file, built by the runner and by `submit`, read by the
leaderboard, `status`, `rescore` and `reproduce`.

Schema versions: 1, results up to issue 24 (no stored codes); 2, a result carries ``codes_file``
(its codes beside it, cmhbench.results.codes_file), ``evaluator`` (the version it was scored with),
``dataset.labels_sha256`` (the labels pinned per split) and, for codes produced outside cmhbench,
``origin``. A version-1 file reads as a RunResult without codes (unverifiable); the run's identity
(run_id) is unchanged by the schema version, which is not part of a run's definition.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields
from typing import Any, Mapping

from cmhbench.errors import CmhbenchError

SCHEMA_VERSION = 2
KNOWN_VERSIONS = (1, 2)


@dataclass(kw_only=True)
class RunResult:
    """One result file's fields, in the file's order (docs/design.md, Results)."""

    schema_version: int = SCHEMA_VERSION
    run_id: str
    method: dict[str, Any]  # name, description, citation, plugin, hyperparameters, preset
    dataset: dict[str, Any]  # name, version, sha256, content_sha256, split_sizes, options, labels_sha256
    protocol: dict[str, Any]
    bits: int
    seed: int
    epoch_override: int | None = None
    precision_requested: str | None = None
    origin: dict[str, Any] | None = None  # outside codes: kind, name, paper, code_url
    encoders: dict[str, Any]
    metrics: dict[str, dict[str, Any]]  # direction -> the evaluator's metrics
    training: dict[str, Any] | None = None
    codes: dict[str, Any] | None = None  # the code statistics (collapse diagnostic)
    diagnostics: dict[str, Any] | None = None
    artifacts: dict[str, Any] | None = None
    timings: dict[str, Any] | None = None
    peak_memory: dict[str, Any] | None = None
    codes_file: dict[str, Any] | None = None  # name, sha256, bytes
    evaluator: dict[str, Any] | None = None  # {"version": N}
    environment: dict[str, Any] | None = None
    git_commit: str | None = None
    command: str | None = None
    rerun: str | None = None
    created_utc: str
    content_sha256: str | None = None

    # ------------------------------------------------------------------ reading and writing
    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RunResult":
        """A parsed result file, migrated to the current schema (version 1 gains nothing but its
        version: it has no codes, which is what makes it unverified)."""
        version = data.get("schema_version")
        if version not in KNOWN_VERSIONS:
            raise CmhbenchError(f"result schema_version {version!r}: this cmhbench reads {KNOWN_VERSIONS}")
        names = {f.name for f in fields(cls)}
        values = {key: value for key, value in data.items() if key in names}
        missing = [f.name for f in fields(cls) if f.name not in values and f.default is MISSING
                   and f.default_factory is MISSING]
        if missing:
            raise CmhbenchError(f"result {data.get('run_id', '?')}: missing field '{missing[0]}'")
        values["schema_version"] = SCHEMA_VERSION
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The file's content, in the documented key order; optional fields left out when unset."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None and f.name in _OMITTED_WHEN_NONE:
                continue
            out[f.name] = value
        return out

    # ------------------------------------------------------------------ what consumers ask
    @property
    def method_name(self) -> str:
        return self.method["name"]

    @property
    def dataset_name(self) -> str:
        return self.dataset["name"]

    @property
    def directions(self) -> list[str]:
        return list(self.metrics)

    @property
    def has_codes(self) -> bool:
        return self.codes_file is not None

    @property
    def is_outside(self) -> bool:
        return bool(self.origin) and self.origin.get("kind") == "outside"


#: optional fields a file may lack (older results lack some measured ones): absent stays absent, so a
#: file read and written back keeps its content digest
_OMITTED_WHEN_NONE = {"precision_requested", "origin", "training", "codes", "diagnostics", "artifacts", "timings",
                      "peak_memory", "codes_file", "evaluator", "environment", "command", "rerun", "content_sha256"}
