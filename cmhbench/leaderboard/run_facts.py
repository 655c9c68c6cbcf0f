"""What a run page says about each run, read from its result file: the method's plugin and version,
the epochs run, the wall times, peak memory and the command that defines the run again.

Result files written by older versions lack some fields; each fact then says so instead of failing.
"""

from __future__ import annotations

import re
from typing import Any

from cmhbench.leaderboard.aggregate import is_closed_form
from cmhbench.leaderboard.load import Entry
from cmhbench.results.rerun import rerun_command as command_line_of


def plugin(result: dict[str, Any]) -> str:
    """The distribution and version that registered the method: a third-party plugin's own, or
    cmhbench's for the built-in ones."""
    origin = str(result["method"].get("plugin") or "")
    inside = re.search(r"\(([^()]*)\)\s*$", origin)
    source = inside.group(1) if inside else origin
    if source in ("builtin", ""):
        return f"cmhbench {result['environment'].get('cmhbench', '?')} (built-in)"
    return source


def epochs(entries: list[Entry]) -> str:
    """Epochs actually run per stage, over the row's runs ("none: closed form" for methods without
    epochs; a range where runs differ, e.g. one that diverged or was stopped early)."""
    if is_closed_form(entries):
        return "none: closed form (one solve, whatever the protocol's epoch budget)"
    per_stage: dict[str, set[int]] = {}
    recorded = False
    for entry in entries:
        run = (entry.result.get("training") or {}).get("epochs")
        if run is None:
            continue
        recorded = True
        for stage, counts in run.items():
            per_stage.setdefault(stage, set()).add(int(counts.get("run", 0)) if isinstance(counts, dict) else int(counts))
    if not recorded:
        return "not recorded (result files from before cmhbench recorded epochs per stage)"
    if not per_stage:
        return "none: closed form"
    return ", ".join(f"{stage} {min(v)}" + (f"–{max(v)}" if max(v) != min(v) else "")
                     for stage, v in per_stage.items())


def timings(result: dict[str, Any]) -> str:
    times = result.get("timings") or {}
    values = [times.get(key) for key in ("train_seconds", "encode_seconds", "evaluate_seconds")]
    return " / ".join(f"{v:.1f}" if isinstance(v, (int, float)) else "–" for v in values)


def machine(result: dict[str, Any]) -> str:
    """The machine a run's times were measured on: its GPU's name, else its CPU's model and threads."""
    environment = result.get("environment") or {}
    if environment.get("gpu"):
        return str(environment["gpu"])
    model = environment.get("cpu_model") or environment.get("cpu") or "unknown CPU"
    threads = environment.get("threads")
    return f"{model}, {threads} threads" if threads else str(model)


def memory(result: dict[str, Any]) -> str:
    peak = result.get("peak_memory") or {}
    parts = []
    if isinstance(peak.get("device_bytes"), (int, float)):
        parts.append(f"GPU {peak['device_bytes'] / 2**30:.2f} GiB")
    if isinstance(peak.get("host_rss_bytes"), (int, float)):
        parts.append(f"host {peak['host_rss_bytes'] / 2**30:.2f} GiB")
    return ", ".join(parts) or "–"


def rerun_command(result: dict[str, Any]) -> str:
    """The `cmhbench run` command of the run: recorded by the runner (``rerun``), or, for older
    result files, put together from the fields that define the run (marked as such)."""
    if isinstance(result.get("rerun"), str):
        return result["rerun"]
    protocol = result.get("protocol") or {}
    preset = result["method"].get("preset")
    image = ((result.get("encoders") or {}).get("image") or {}).get("name")
    command = command_line_of(
        method=result["method"]["name"], dataset=result["dataset"]["name"], bits=result["bits"],
        seed=result["seed"], epochs=result.get("epoch_override"),
        preset=preset if preset != protocol.get("preset") else None,
        dataset_options=result["dataset"].get("options"),
        image_encoder=image if protocol.get("image_encoder") and image != protocol["image_encoder"] else None)
    return command + "   (put together from the result; hyper-parameter overrides not shown)"
