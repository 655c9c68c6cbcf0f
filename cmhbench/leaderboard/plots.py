"""Plots of one table, drawn with matplotlib (Agg, no display), one panel per direction: mAP per code
length (bars for a single code length, with seed error bars), mAP against training time (accuracy
against cost), and per code length precision–recall by Hamming radius and precision@K."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cmhbench.leaderboard import run_facts
from cmhbench.leaderboard.aggregate import Table


@dataclass
class Plot:
    file: str
    caption: str


def _safe(text: str) -> str:
    """Legends carry user-supplied method names: matplotlib would read $...$ as mathtext."""
    return text.replace("$", r"\$")


def _figure(directions: list[str], legend_inches: float):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(directions), figsize=(5.2 * len(directions), 4 + legend_inches), squeeze=False)
    return plt, fig, axes[0]


def _finish(plt, fig, axes, out: Path) -> None:
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(2, len(labels)), fontsize=10,
                   bbox_to_anchor=(0.5, 0.0), frameon=False)
    fig.tight_layout(rect=(0, min(0.7, (_legend_inches(len(labels)) + 0.1) / fig.get_figheight()), 1, 1))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)


def _legend_inches(entries: int) -> float:
    """Inches a legend takes below the panels: two entries a line, 0.3 inch each."""
    return 0.3 * ((entries + 1) // 2)


def draw_table_plots(table: Table, folder: Path) -> list[Plot]:
    plots = [_map_against_bits(table, folder), _map_against_time(table, folder)]
    for bits in table.bits:
        for part, x, y, xlabel, ylabel, what in (
                ("pr_by_radius", "recall", "precision", "recall", "precision", "precision–recall by Hamming radius"),
                ("precision_at", "k", "value", "K", "precision@K", "precision@K")):
            plt, fig, axes = _figure(table.directions, _legend_inches(len(table.rows)))
            for ax, direction in zip(axes, table.directions, strict=True):
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


def _map_against_bits(table: Table, folder: Path) -> Plot:
    """mAP against code length with seed error bars (± one sample standard deviation); with a single
    code length, a bar per row instead of a column of dots."""
    plt, fig, axes = _figure(table.directions, _legend_inches(len(table.rows)))
    single = len(table.bits) == 1
    for ax, direction in zip(axes, table.directions, strict=True):
        for index, row in enumerate(table.rows):
            stats = [(b, s) for b in table.bits if (s := row.cell(b, direction))]
            if not stats:
                continue
            errors = [s.std or 0.0 for _, s in stats]
            if single:
                ax.bar(index, stats[0][1].mean, yerr=errors[0], capsize=4, label=_safe(row.label),
                       color=f"C{index % 10}")
            else:
                ax.errorbar([b for b, _ in stats], [s.mean for _, s in stats], yerr=errors, marker="o", capsize=3,
                            label=_safe(row.label), color=f"C{index % 10}")
        chance = table.chance_values[table.columns.index((table.bits[0], direction))]
        if chance is not None:
            ax.axhline(chance, color="grey", linestyle=":", linewidth=1)
        if single:
            ax.set(title=f"{direction}, {table.bits[0]} bits: mAP (dotted: chance)", ylabel="mAP")
            ax.set_xticks([])
        else:
            ax.set(title=f"{direction}: mAP against code length (dotted: chance)", xlabel="bits", ylabel="mAP")
            ax.set_xticks(table.bits)
        ax.grid(alpha=0.3, axis="y" if single else "both")
    name = f"{table.slug}-map-vs-bits.png"
    _finish(plt, fig, axes, folder / name)
    return Plot(name, "mAP per code length (error bars: ± one standard deviation over seeds)")


def _map_against_time(table: Table, folder: Path) -> Plot:
    """Accuracy against cost, as ann-benchmarks plots recall against throughput: each row's mean mAP
    against its mean training time, one point per code length, the marker telling the device."""
    plt, fig, axes = _figure(table.directions, _legend_inches(len(table.rows)) + 0.3)
    devices = [_device(row) for row in table.rows]
    markers: dict[str, str] = {}
    for ax, direction in zip(axes, table.directions, strict=True):
        for index, (row, device) in enumerate(zip(table.rows, devices, strict=True)):
            points = [(t, s, b) for b in table.bits if (s := row.cell(b, direction)) and (t := row.seconds(b))]
            if not points:
                continue
            marker = markers.setdefault(device, "os^Dv<>"[len(markers) % 7])
            ax.errorbar([t.mean for t, _, _ in points], [s.mean for _, s, _ in points],
                        xerr=[t.std or 0.0 for t, _, _ in points], yerr=[s.std or 0.0 for _, s, _ in points],
                        marker=marker, linestyle="-" if len(points) > 1 else "none", capsize=2,
                        color=f"C{index % 10}", label=_safe(f"{row.label} [{device}]"))
        ax.set_xscale("log")
        ax.set(title=f"{direction}: mAP against training time", xlabel="training time per run (s, log)",
               ylabel="mAP")
        ax.grid(alpha=0.3, which="both")
    name = f"{table.slug}-map-vs-time.png"
    _finish(plt, fig, axes, folder / name)
    return Plot(name, "accuracy against cost: mAP against training wall time (one point per code length; "
                      "marker and [label]: the machine the times were measured on)")


def _device(row) -> str:
    return " + ".join(sorted({run_facts.machine(e.result) for e in row.entries}))


def draw_retrieval_plots(bench, folder: Path, stem: str) -> list[Plot]:
    """Per code length: median query latency against database size, one line per index (log-log)."""
    plots = []
    synthetic = [m for m in bench.measurements if m["codes"] == "synthetic"]
    for bits in sorted({m["bits"] for m in synthetic}):
        plt, fig, axes = _figure(["latency"], _legend_inches(4))
        ax = axes[0]
        for index in sorted({m["index"] for m in synthetic}):
            points = sorted((m["items"], m["latency_median_ms"]) for m in synthetic
                            if m["bits"] == bits and m["index"] == index)
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=_safe(index))
        ax.set(xscale="log", yscale="log", xlabel="database items", ylabel="median query latency (ms)")
        ax.set_title(_safe(f"{bits} bits, top-{synthetic[0]['k']}\n{bench.machine}"), fontsize=9)
        ax.grid(alpha=0.3, which="both")
        name = f"{stem}-{bits}bits-latency.png"
        _finish(plt, fig, [ax], folder / name)
        plots.append(Plot(name, f"{bits} bits: query latency against database size, measured on {bench.machine}"))
    return plots
