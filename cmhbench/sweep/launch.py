"""`cmhbench sweep` as a library call: expand the grid, record it, run what is not done."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from cmhbench.sweep.executors import ClusterOptions, run_jobs
from cmhbench.sweep.jobs import JobOutcome
from cmhbench.sweep.manifest import write_manifest
from cmhbench.sweep.spec import Job, SweepSpec, expand


@dataclass
class SweepSummary:
    manifest: Path
    jobs: list[Job]
    outcomes: list[JobOutcome]

    def count(self, *statuses: str) -> int:
        return sum(o.status in statuses for o in self.outcomes)

    @property
    def failed(self) -> list[JobOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]


def launch(spec: SweepSpec, executor: str = "local", *, workers: int | None = None, threads: int | None = None,
           cluster: ClusterOptions | None = None,
           on_plan: Callable[[Path, list[Job]], None] | None = None,
           report: Callable[[JobOutcome], None] | None = None) -> SweepSummary:
    if executor == "slurm":  # its prerequisites before the grid is expanded (minutes for a large one)
        from cmhbench.sweep.slurm import check_tools

        check_tools()
    jobs = expand(spec)
    manifest = write_manifest(spec, jobs)
    if on_plan:
        on_plan(manifest, jobs)
    outcomes = run_jobs(jobs, executor, manifest, workers=workers, threads=threads, cluster=cluster, report=report)
    return SweepSummary(manifest, jobs, outcomes)
