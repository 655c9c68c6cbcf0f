"""Collects benchmark timings and prints them as ratios against the reference of the same run."""

from __future__ import annotations

TIMINGS: dict[str, float] = {}
REFERENCES: dict[str, str] = {}  # benchmark name -> the reference it is compared with
RATES: dict[str, tuple[float, str | None]] = {}  # name -> (items/s, the rate it is compared with)


def record(benchmark, name: str, reference: str | None = None, statistic: str = "min") -> None:
    """Keep ``statistic`` ("min" or "median") of a benchmark for the summary's ratios."""
    TIMINGS[name] = getattr(benchmark.stats.stats, statistic)
    if reference:
        REFERENCES[name] = reference


def record_rate(name: str, items_per_second: float, reference: str | None = None) -> None:
    """Keep a throughput (items/s) for the summary, as a percentage of ``reference``'s."""
    RATES[name] = (items_per_second, reference)


def pytest_terminal_summary(terminalreporter):
    if RATES:
        terminalreporter.section("cmhbench throughput (items/s; same run)")
        for name, (rate, reference) in RATES.items():
            line = f"{name:55s} {rate:11,.0f} items/s"
            if reference in RATES:
                line += f"   {rate / RATES[reference][0]:6.0%} of {reference}"
            terminalreporter.write_line(line)
    if not TIMINGS:
        return
    terminalreporter.section("cmhbench speed ratios (min time, or median where named; same run)")
    for name, seconds in TIMINGS.items():
        line = f"{name:55s} {seconds:9.4f} s"
        ref = REFERENCES.get(name)
        if ref in TIMINGS and seconds <= TIMINGS[ref]:
            line += f"   {TIMINGS[ref] / seconds:7.1f}x faster than {ref}"
        elif ref in TIMINGS:
            line += f"   {seconds / TIMINGS[ref]:7.1f}x the time of {ref}"
        terminalreporter.write_line(line)
