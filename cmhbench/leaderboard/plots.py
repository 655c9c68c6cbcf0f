"""Plots of one table, drawn with matplotlib (Agg, no display): mAP against code length, and per
code length precision–recall by Hamming radius and precision@K, one panel per direction."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cmhbench.leaderboard.aggregate import Table



@dataclass
class Plot:
    file: str
    caption: str


def _safe(text: str) -> str:
    """Legends carry user-supplied method names: matplotlib would read $...$ as mathtext."""
    return text.replace("$", r"\$")


def _figure(directions: list[str]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(directions), figsize=(5.2 * len(directions), 4), squeeze=False)
    return plt, fig, axes[0]


def _finish(plt, fig, axes, out: Path) -> None:
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(3, len(labels)), fontsize=8,
                   bbox_to_anchor=(0.5, -0.02))
    fig.tight_layout(rect=(0, 0.08 + 0.03 * ((len(labels) - 1) // 3), 1, 1))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)


def draw_table_plots(table: Table, folder: Path) -> list[Plot]:
    plots = []
    plt, fig, axes = _figure(table.directions)
    for ax, direction in zip(axes, table.directions):
        for row in table.rows:
            points = [(b, s.mean) for b in table.bits if (s := row.cell(b, direction))]
            if points:
                ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=_safe(row.label))
        ax.set(title=f"{direction}: mAP against code length", xlabel="bits", ylabel="mAP")
        ax.set_xticks(table.bits)
        ax.grid(alpha=0.3)
    name = f"{table.slug}-map-vs-bits.png"
    _finish(plt, fig, axes, folder / name)
    plots.append(Plot(name, "mAP against code length"))

    for bits in table.bits:
        for part, x, y, xlabel, ylabel, what in (
                ("pr_by_radius", "recall", "precision", "recall", "precision", "precision–recall by Hamming radius"),
                ("precision_at", "k", "value", "K", "precision@K", "precision@K")):
            plt, fig, axes = _figure(table.directions)
            for ax, direction in zip(axes, table.directions):
                for row in table.rows:
                    curve = row.curve(bits, direction, part, x, y)
                    if curve:
                        ax.plot(curve[0], curve[1], marker="." if part == "pr_by_radius" else None,
                                label=_safe(row.label))
                ax.set(title=f"{direction}, {bits} bits: {what}", xlabel=xlabel, ylabel=ylabel)
                if part == "precision_at":
                    ax.set_xscale("log")
                ax.grid(alpha=0.3)
            name = f"{table.slug}-{part}-{bits}bits.png"
            _finish(plt, fig, axes, folder / name)
            plots.append(Plot(name, f"{what}, {bits} bits"))
    return plots
