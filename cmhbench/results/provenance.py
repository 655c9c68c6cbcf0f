"""Where and how a result was produced: versions, hardware, commit, command line, time."""

from __future__ import annotations

import platform
import socket
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

import cmhbench
from cmhbench.results.rerun import rerun_command as build_rerun_command


def environment(device: torch.device) -> dict[str, Any]:
    gpu = None
    if device.type == "cuda":
        gpu = torch.cuda.get_device_name(device)
    return {
        "cmhbench": cmhbench.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "device": str(device),
        "gpu": gpu,
        "cpu": platform.processor() or platform.machine(),
        "host": socket.gethostname(),
        "platform": platform.platform(),
    }


def git_commit() -> str | None:
    """The commit of the cmhbench checkout this code runs from, when it runs from one."""
    root = Path(cmhbench.__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, timeout=5).stdout.strip()
    return out.stdout.strip() + ("-dirty" if dirty else "")


def command_line() -> str:
    return " ".join(sys.argv)


def rerun_command(request: Any) -> str:
    """The `cmhbench run` command that defines this run again, whatever started it (`cmhbench run`, a
    sweep worker, a library call): what a reader of the leaderboard can copy."""
    return build_rerun_command(
        method=request.method, dataset=request.dataset, bits=request.bits, seed=request.seed,
        epochs=request.epochs, preset=request.preset, hparams=request.hparams,
        dataset_options=request.dataset_options, image_encoder=request.image_encoder,
        image_weights=request.image_weights, precision=request.precision, directions=request.directions)


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def peak_memory(device: torch.device) -> dict[str, Any]:
    result: dict[str, Any] = {}
    if device.type == "cuda":
        result["device_bytes"] = int(torch.cuda.max_memory_allocated(device))
    try:
        import resource

        # ru_maxrss is KiB on Linux
        result["host_rss_bytes"] = int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
    except (ImportError, OSError):
        pass
    return result
