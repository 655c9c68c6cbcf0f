"""The numbers methods' papers report, beside the runs of the same dataset.

They come from the installed method specs (``MethodSpec.reported``), not from result files: each
becomes a "reported" row of the table of its dataset, kept apart from the runs (never averaged with
them), and each run row of the same method shows its difference from the paper's number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable

from cmhbench.leaderboard.aggregate import Row, Table
from cmhbench.specs import MethodSpec


@dataclass
class ReportedRow:
    method: str
    source: str
    setting: str
    values: dict[tuple[int, str], float] = field(default_factory=dict)
    definition: str | None = None  # the paper's "mAP" (ReportedResult.definition)

    @property
    def label(self) -> str:
        setting = f"; {self.setting}" if self.setting else ""
        return f"{self.method}: reported in {self.source}{setting}"

    def texts(self, table: Table) -> list[str]:
        return [f"{self.values[c]:.4f}" if c in self.values else "–" for c in table.columns]


def installed_method_specs() -> list[MethodSpec]:
    """Every registered method's spec (none where the plugins cannot be loaded: the board then shows
    no reported rows rather than failing)."""
    try:
        from cmhbench.plugins.registry import get_registry

        registry = get_registry()
        names = registry.names("method")
    except Exception:  # a broken plugin environment must not stop a board built from result files
        return []
    specs = []
    for name in names:
        try:
            specs.append(registry.method(name))
        except Exception:  # one conflicting or broken method hides only its own numbers
            continue
    return specs


def reported_rows(table: Table, specs: Iterable[MethodSpec], metric: str = "map") -> list[ReportedRow]:
    """One row per (method, paper table, setting) with numbers for this table's dataset."""
    rows: dict[tuple[str, str, str], ReportedRow] = {}
    for spec in specs:
        for reported in spec.reported:
            if reported.dataset != table.dataset or reported.metric != metric:
                continue
            row = rows.setdefault((spec.name, reported.source, reported.setting),
                                  ReportedRow(spec.name, reported.source, reported.setting,
                                              definition=reported.definition))
            row.values[reported.bits, reported.direction] = reported.value
    return [row for row in rows.values() if any(c in row.values for c in table.columns)]


def difference(row: Row, reported: list[ReportedRow], bits: int, direction: str) -> tuple[float | None, str]:
    """(our seed-mean minus the paper's number, for the same method, code length and direction, with
    our score computed under the paper's own mAP definition; the first paper table that has one) or
    (None, why there is no difference to show)."""
    for candidate in reported:
        if candidate.method != row.method or (bits, direction) not in candidate.values:
            continue
        if candidate.definition is None:
            return None, "the paper's mAP definition is unknown: not comparable"
        ours = [_under(result["metrics"][direction], candidate.definition) for result in row.scored(bits, direction)]
        if not ours or any(value is None for value in ours):
            return None, f"these runs have no {candidate.definition} (unverified, or K beyond the retrieval set): not comparable"
        return math.fsum(ours) / len(ours) - candidate.values[bits, direction], candidate.definition
    return None, ""


def _under(metrics: dict, definition: str) -> float | None:
    """One run's score under a named definition: cmhbench's own map, or a paper's variant."""
    if definition == "map":
        return metrics.get("map")
    return (metrics.get("variants") or {}).get(definition)
