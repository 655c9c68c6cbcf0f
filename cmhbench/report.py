"""Terminal rendering of run outcomes and metrics (rich tables, narrow enough for 80 columns)."""

from __future__ import annotations

from typing import Any, Mapping

from rich.console import Console
from rich.table import Table

from cmhbench.textsafe import safe


def print_metrics(console: Console, metrics: Mapping[str, Mapping[str, Any]], title: str = "") -> None:
    ks = sorted({k for m in metrics.values() for k in m["map_at"]}, key=int)
    shown_ks = ks[:1] + ks[-1:] if len(ks) > 1 else ks
    table = Table(title=safe(title) or None, caption="chance: the expected mAP of a random ranking; lookup: hash lookup within Hamming radius 2")
    for column in ["dir", "mAP", "chance", "tie-aware", *[f"mAP@{k}" for k in shown_ks], "lookup P",
                   "lookup F1", "no-rel q"]:
        table.add_column(column, justify="left" if column == "dir" else "right", no_wrap=True)
    for direction, m in metrics.items():
        lookup = m["lookup_r2"]
        chance = f"{m['map_chance']:.4f}" if "map_chance" in m else "-"  # results written before it existed
        table.add_row(direction, f"{m['map']:.4f}", chance, f"{m['map_tie_aware']:.4f}",
                      *[f"{m['map_at'][k]:.4f}" for k in shown_ks],
                      f"{lookup['precision']:.4f}", f"{lookup['f1']:.4f}", str(m["queries_without_relevant"]))
    console.print(table)


def print_outcome(console: Console, outcome: Any) -> None:
    result = outcome.result
    title = (f"{result['method']['name']} on {result['dataset']['name']}, {result['bits']} bits, "
             f"seed {result['seed']}")
    if outcome.path is None:
        console.print(f"{safe(title)}: trained in {result['timings']['train_seconds']:.1f}s; this configuration "
                      "produces no codes, so nothing was scored. Saved:")
        for name, path in result["artifacts"].items():
            console.print(f"  {safe(name)}: {safe(path)}", highlight=False)
        return
    if outcome.skipped:
        console.print(f"[yellow]{safe(title)}: result exists, skipped[/yellow] ({safe(outcome.path)}; --force to rerun)")
    print_metrics(console, result["metrics"], title=title)
    if not outcome.skipped:
        t = result["timings"]
        console.print(f"train {t['train_seconds']:.1f}s ({t['train_items_per_second']:,.0f} items/s), "
                      f"encode {t['encode_seconds']:.1f}s, "
                      f"evaluate {t['evaluate_seconds']:.2f}s -> {safe(outcome.path)}")
