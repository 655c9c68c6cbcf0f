"""The epoch budget: how many epochs each stage runs under ``--epochs N`` or the protocol's.

A method declares its published schedule (``MethodSpec.stages``: stage -> hyper-parameter holding
its epoch count). Under a budget N the longest declared stage runs N epochs and every other one
round(published·N/longest), at least one (DAPH's 80 + 220 under N = 22 runs 8 + 22). A fixed loop
outside the schedule (a closed-form solve) passes its own count and is not scaled; a plugin that
declares no schedule at all gets N for every stage.
"""

from __future__ import annotations

from cmhbench.errors import CmhbenchError


class EpochBudget:
    def __init__(self, override: int | None, schedule: dict[str, int] | None):
        self.override = override
        #: published epochs per declared stage; None when the method declares no schedule
        self.schedule = dict(schedule) if schedule is not None else None

    def published(self, stage: str, published: int | None = None) -> int:
        """The stage's published epoch count: from the schedule, or given for a fixed loop."""
        if not isinstance(stage, str):
            raise CmhbenchError(f"ctx.epochs({stage!r}): pass the stage's name (e.g. ctx.epochs('train')); its "
                                "published epoch count comes from MethodSpec.stages")
        if self.schedule is not None and stage in self.schedule:
            if published is not None and published != self.schedule[stage]:
                raise CmhbenchError(
                    f"stage {stage!r} was asked to run {published} epochs, but the method's schedule publishes "
                    f"{self.schedule[stage]}: call ctx.epochs({stage!r}); the budget is applied by the harness")
            published = self.schedule[stage]
        elif published is None:
            raise CmhbenchError(
                f"stage {stage!r} is not in the method's MethodSpec.stages: declare it there (stage -> the "
                f"hyper-parameter holding its epoch count), or pass published=N for a fixed loop")
        if isinstance(published, bool) or not isinstance(published, int) or published < 1:
            raise CmhbenchError(f"stage {stage!r}: its epoch count must be at least 1, got {published!r} (the "
                                "hyper-parameter MethodSpec.stages names for it, or published=N)")
        return published

    def planned(self, stage: str, published: int | None = None) -> int:
        """The epochs ``stage`` runs under this budget."""
        count = self.published(stage, published)
        if self.override is None:
            return count
        if self.schedule is None:  # nothing declared: the budget is every stage's epoch count
            return int(self.override)
        if stage not in self.schedule:  # a fixed loop outside the schedule
            return count
        longest = max(self.schedule.values())
        return max(1, round(count * int(self.override) / longest))
