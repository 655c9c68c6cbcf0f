"""Grouping results into comparable tables and aggregating over seeds.

Like is compared with like: one table per (dataset, dataset version, protocol, protocol version), so
a result from another protocol or another preparation of the data never shares a table. Within a
table a row is one configuration: method, encoders, preset, hyper-parameters and epoch budget; a
cell is the mean, the sample standard deviation (n − 1) and the count over that row's seeds.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable

from cmhbench.leaderboard.load import Entry

DIRECTIONS = ("i2t", "t2i", "i2i", "t2t")


@dataclass(frozen=True)
class Metric:
    """One tabulated metric: its key (page anchors, --json), its title, and how to read it from one
    direction's metrics of a result (None where that result did not record it)."""

    key: str
    title: str
    read: Callable[[dict[str, Any]], float | None]
    chance: bool = False  # whether the chance row (the expected mAP of a random ranking) applies


def _at(mapping: Any, key: str) -> float | None:
    return mapping.get(key) if isinstance(mapping, dict) else None


def _precision_at(metrics: dict[str, Any], k: int) -> float | None:
    curve = metrics.get("precision_at") or {}
    ks, values = curve.get("k") or [], curve.get("value") or []
    return values[ks.index(k)] if k in ks and len(values) == len(ks) else None


MAP_AT_K = "50"  # the mAP@K the board tabulates: the protocols' smallest K (every protocol records it)
PRECISION_K = 100
METRICS = (
    Metric("map", "mAP", lambda m: m.get("map"), chance=True),
    Metric("map_tie_aware", "tie-aware mAP", lambda m: m.get("map_tie_aware"), chance=True),
    Metric(f"map_at_{MAP_AT_K}", f"mAP@{MAP_AT_K}", lambda m: _at(m.get("map_at"), MAP_AT_K)),
    Metric(f"precision_at_{PRECISION_K}", f"P@{PRECISION_K}", lambda m: _precision_at(m, PRECISION_K)),
    Metric("lookup_f1", "lookup F1 (Hamming radius 2)", lambda m: _at(m.get("lookup_r2"), "f1")),
)
METRIC_BY_KEY = {metric.key: metric for metric in METRICS}


@dataclass(frozen=True)
class Stat:
    mean: float
    std: float | None  # None for a single seed
    n: int

    @staticmethod
    def of(values: list[float]) -> "Stat":
        n = len(values)
        mean = math.fsum(values) / n
        std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else None
        return Stat(mean, std, n)


@dataclass
class Row:
    key: str
    method: str
    encoders: str
    config: dict[str, Any]  # preset, hyper-parameters, epoch budget
    entries: list[Entry] = field(default_factory=list)
    label: str = ""
    #: "run" (re-scored from stored codes), "outside" (codes submitted from another code base) or
    #: "unverified" (a result without codes)
    kind: str = "run"
    # scored() per (entry count, bits, direction): every table, plot and page asks again
    _scored: dict[tuple[int, int, str], list[dict[str, Any]]] = field(default_factory=dict, repr=False,
                                                                     compare=False)

    def scored(self, bits: int, direction: str) -> list[dict[str, Any]]:
        """One result per seed that scored ``direction`` at ``bits``. A seed can have several: runs
        that differ only in the directions they asked for (e.g. a later `--directions i2t,t2i,i2i`
        rerun) are distinct runs, but one sample each; the newest counts."""
        key = (len(self.entries), bits, direction)
        if key not in self._scored:
            self._scored[key] = self._newest_per_seed(bits, direction)
        return self._scored[key]

    def _newest_per_seed(self, bits: int, direction: str) -> list[dict[str, Any]]:
        by_seed: dict[int, dict[str, Any]] = {}
        for result in (e.result for e in self.entries if e.result["bits"] == bits):
            if direction in result["metrics"]:
                kept = by_seed.get(result["seed"])
                if kept is None or result["created_utc"] > kept["created_utc"]:
                    by_seed[result["seed"]] = result
        return [by_seed[seed] for seed in sorted(by_seed)]

    def cell(self, bits: int, direction: str, metric: str = "map") -> Stat | None:
        read = METRIC_BY_KEY[metric].read
        values = [v for r in self.scored(bits, direction) if (v := read(r["metrics"][direction])) is not None]
        return Stat.of(values) if values else None

    def seconds(self, bits: int) -> Stat | None:
        """Training wall time over this row's seeds at ``bits`` (the board's cost axis)."""
        values = [e.result["timings"]["train_seconds"] for e in self.entries
                  if e.result["bits"] == bits and isinstance(e.result.get("timings", {}).get("train_seconds"), (int, float))]
        return Stat.of(values) if values else None

    def collapsed(self, bits: int, direction: str) -> bool:
        """Whether any seed of this cell produced collapsed codes (most items sharing one code; the
        runner's ``codes`` diagnostic): its mAP then measures the label prior, not retrieval."""
        return any(result_collapsed(r) for r in self.scored(bits, direction))

    def reproduced(self, bits: int, direction: str) -> bool:
        """Whether every seed of this cell was run in two or more environments with the same metrics
        (a verified run copied from another machine that gave the same codes)."""
        scored = [id(r) for r in self.scored(bits, direction)]
        entries = [e for e in self.entries if id(e.result) in scored]
        return bool(entries) and all(e.verified and e.environments > 1 for e in entries)

    def curve(self, bits: int, direction: str, part: str, x: str, y: str) -> tuple[list[float], list[float]] | None:
        """Seed-mean of a per-run curve (precision@K, PR by radius) at one code length."""
        curves = [r["metrics"][direction][part] for r in self.scored(bits, direction)]
        if not curves:
            return None
        length = min(len(c[x]) for c in curves)
        xs = curves[0][x][:length]
        ys = [math.fsum(c[y][i] for c in curves) / len(curves) for i in range(length)]
        return list(xs), ys


@dataclass
class Table:
    dataset: str
    dataset_version: str
    protocol: str
    protocol_version: int
    rows: list[Row]
    bits: list[int]
    directions: list[str]
    #: the dataset options (--dataset-opt) its runs share, which make the table distinct (toy size=400)
    options: dict[str, Any] = field(default_factory=dict)
    #: the protocol's seed count: only a row with that many seeds in a column can be its best
    seeds: int = 1

    @property
    def title(self) -> str:
        options = f" ({', '.join(f'{k}={v}' for k, v in sorted(self.options.items()))})" if self.options else ""
        return (f"{self.dataset}{options} — protocol {self.protocol} v{self.protocol_version}, "
                f"data {self.dataset_version}")

    @property
    def short_title(self) -> str:
        """For navigation: the dataset, its distinguishing options and the protocol version."""
        options = f" {' '.join(f'{k}={v}' for k, v in sorted(self.options.items()))}" if self.options else ""
        return f"{self.dataset}{options} ({self.protocol} v{self.protocol_version})"

    @property
    def slug(self) -> str:
        return slug(f"{self.dataset}-{self.protocol}-v{self.protocol_version}-{self.dataset_version}")

    @property
    def columns(self) -> list[tuple[int, str]]:
        return [(bits, direction) for bits in self.bits for direction in self.directions]

    @cached_property
    def _contenders(self) -> list[Row]:
        """The rows that can be a column's best: an unverified row (no stored codes) never beats a row
        whose numbers were re-derived from codes; a board of only unverified rows still ranks them."""
        verified = [row for row in self.rows if row.kind != "unverified"]
        return verified or self.rows

    @cached_property
    def _best(self) -> dict[tuple[str, int, str], float]:
        best: dict[tuple[str, int, str], float] = {}
        for metric in METRICS:
            for bits, direction in self.columns:
                means = [s.mean for row in self._contenders
                         if (s := row.cell(bits, direction, metric.key)) and s.n >= self.seeds]
                if means:
                    best[metric.key, bits, direction] = max(means)
        return best

    def best(self, bits: int, direction: str, metric: str = "map") -> float | None:
        return self._best.get((metric, bits, direction))

    def metrics(self) -> list[Metric]:
        """The metrics any run of this table recorded, in the board's order."""
        return [m for m in METRICS if any(row.cell(bits, direction, m.key) for row in self.rows
                                          for bits, direction in self.columns)]

    @cached_property
    def chance_values(self) -> list[float | None]:
        """The chance row, in column order: the expected mAP of a random ranking (``map_chance``, exact
        from the labels; the same for every run of a column, to 4 decimals), None where no result
        records it."""
        out: list[float | None] = []
        for bits, direction in self.columns:
            values = {round(r["metrics"][direction]["map_chance"], 4) for row in self.rows
                      for r in row.scored(bits, direction) if "map_chance" in r["metrics"][direction]}
            out.append(values.pop() if len(values) == 1 else None)
        return out

    def chance(self) -> list[str]:
        """The chance row as printed: "–" where no result records it."""
        return ["–" if value is None else f"{value:.4f}" for value in self.chance_values]

    def cells(self, row: Row, metric: str = "map") -> list["Cell"]:
        """One row's cells in column order, each with its statistic and whether it is the best."""
        out = []
        for bits, direction in self.columns:
            stat = row.cell(bits, direction, metric)
            best = (stat is not None and row in self._contenders and stat.n >= self.seeds
                    and stat.mean == self.best(bits, direction, metric))
            out.append(Cell(bits, direction, stat, best, row.collapsed(bits, direction),
                            row.reproduced(bits, direction)))
        return out


@dataclass(frozen=True)
class Cell:
    bits: int
    direction: str
    stat: Stat | None
    best: bool
    collapsed: bool = False
    reproduced: bool = False

    @property
    def text(self) -> str:
        return format_stat(self.stat) + (" collapsed" if self.collapsed else "") + (" reproduced" if self.reproduced else "")


def result_collapsed(result: dict[str, Any]) -> bool:
    """True when a result's code diagnostic marks any split and modality as collapsed (results
    written before the diagnostic existed carry none and count as not collapsed)."""
    codes = result.get("codes") or {}
    return any(isinstance(stats, dict) and stats.get("collapsed")
               for split in codes.values() if isinstance(split, dict) for stats in split.values())


def slug(text: str) -> str:
    """A file-name-safe, unique name for any string (hostile ones included)."""
    readable = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "x"
    return f"{readable}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def _encoders(result: dict[str, Any]) -> str:
    image = result["encoders"]["image"]
    text = result["encoders"]["text"]
    # weights are part of what a backbone is (alexnet:none is an untrained AlexNet); features have none
    weights = "" if image["name"] in ("identity", "none") or not image["weights"] else f":{image['weights']}"
    return f"{image['name']}{weights} / {text['name']}"


def _config(result: dict[str, Any]) -> dict[str, Any]:
    return {"preset": result["method"].get("preset"), "hyperparameters": result["method"]["hyperparameters"],
            "epochs": result.get("epoch_override")}


def build_tables(entries: list[Entry]) -> list[Table]:
    groups: dict[tuple, list[Entry]] = {}
    for entry in entries:
        r = entry.result
        key = (r["dataset"]["name"], r["dataset"]["version"], r["protocol"]["name"], r["protocol"]["version"])
        groups.setdefault(key, []).append(entry)
    tables = []
    for (dataset, version, protocol, protocol_version), members in sorted(groups.items(), key=lambda kv: [str(k) for k in kv[0]]):
        rows: dict[str, Row] = {}
        for entry in members:
            r = entry.result
            config = _config(r)
            # verified and unverified runs never share a row; nor do outside codes and our runs
            kind = row_kind(entry)
            key = json.dumps([r["method"]["name"], r["encoders"], config, kind], sort_keys=True, default=str)
            row = rows.setdefault(key, Row(key, r["method"]["name"], _encoders(r), config, kind=kind))
            row.entries.append(entry)
        ordered = sorted(rows.values(), key=lambda row: (row.method, row.encoders, row.key))
        _label_rows(ordered)
        bits = sorted({e.result["bits"] for e in members})
        directions = [d for d in DIRECTIONS if any(d in e.result["metrics"] for e in members)]
        options = [e.result["dataset"].get("options") or {} for e in members]
        shared = {k: v for k, v in options[0].items() if all(o.get(k) == v for o in options)}
        seeds = max(len(e.result["protocol"].get("seeds") or [0]) for e in members)
        tables.append(Table(dataset, version, protocol, protocol_version, ordered, bits, directions, shared, seeds))
    return tables


def _label_rows(rows: list[Row]) -> None:
    """'method (encoders)', plus the epoch budget, plus a configuration number where one method
    appears with several configurations in the same table."""
    seen: dict[tuple[str, str, str], int] = {}
    for row in rows:
        base = (row.method, row.encoders, row.kind)
        seen[base] = seen.get(base, 0) + 1
    counter: dict[tuple[str, str, str], int] = {}
    for row in rows:
        base = (row.method, row.encoders, row.kind)
        counter[base] = counter.get(base, 0) + 1
        label = f"{row.method} ({row.encoders})"
        if row.config["epochs"] and not is_closed_form(row.entries):
            label += f", {row.config['epochs']} epochs"
        if row.config["preset"]:
            label += f", preset {row.config['preset']}"
        if seen[base] > 1:
            label += f", config {counter[base]}"
        row.label = label + ROW_KIND_SUFFIX[row.kind]


ROW_KIND_SUFFIX = {"run": "", "outside": " — outside codes", "unverified": " — unverified (no stored codes)"}


def row_kind(entry: Entry) -> str:
    if not entry.verified:
        return "unverified"
    return "outside" if (entry.result.get("origin") or {}).get("kind") == "outside" else "run"


def is_closed_form(entries: list[Entry]) -> bool:
    """Whether a row's method has no epochs for a budget to set: it records none (training.epochs
    == {}), or only the one-pass "solve" stage of the built-in shallow methods."""
    def closed(result: dict[str, Any]) -> bool:
        epochs = (result.get("training") or {}).get("epochs")
        return epochs is not None and set(epochs) <= {"solve"}
    return bool(entries) and all(closed(e.result) for e in entries)


def format_stat(stat: Stat | None) -> str:
    if stat is None:
        return "–"
    if stat.std is None:
        return f"{stat.mean:.4f} (n=1)"
    return f"{stat.mean:.4f} ± {stat.std:.4f} (n={stat.n})"
