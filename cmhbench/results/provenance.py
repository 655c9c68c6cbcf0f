"""Where and how a result was produced: versions, hardware, commit, command line, time."""

from __future__ import annotations

import platform
import socket
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

import cmhbench
from cmhbench.results.rerun import rerun_command as build_rerun_command


def environment(device: torch.device) -> dict[str, Any]:
    """Where a run ran, including what decides its float arithmetic: two runs of one definition give
    identical codes only where ``reproducibility_key`` of their environments is equal."""
    gpu, on_gpu = None, {}
    if device.type == "cuda":
        gpu = torch.cuda.get_device_name(device)
        on_gpu = {"tf32": _tf32_settings()}
    return {
        "cmhbench": cmhbench.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "device": str(device),
        "gpu": gpu,
        "cpu": platform.processor() or platform.machine(),
        **cpu_identity(),
        # the vector instructions torch's CPU kernels dispatch to (AVX2, AVX512, ...): reductions are
        # summed in another order under each, so fp32 results differ in their last bits
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        **on_gpu,
    }


def _tf32_settings() -> dict[str, Any]:
    """Whether "fp32" matrix products and convolutions may run in TF32 on the GPU (torch's defaults:
    convolutions yes, matrix products no)."""
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    if hasattr(matmul, "fp32_precision"):  # newer torch; reading the older flags can raise once these are set
        return {"matmul": matmul.fp32_precision, "conv": cudnn.conv.fp32_precision}
    return {"matmul": "tf32" if matmul.allow_tf32 else "ieee", "conv": "tf32" if cudnn.allow_tf32 else "ieee"}


#: instruction-set extensions that decide which kernels torch, oneDNN and BLAS dispatch to
_ISA_FLAGS = ("avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "amx_tile",
              "amx_bf16", "asimd", "sve")


def cpu_identity() -> dict[str, Any]:
    """What names the CPU's arithmetic: its model (VMs often print only the vendor's family name, so
    also family/model/stepping), the vector extensions present and the cache size (BLAS picks its
    blocking, and so its summation order, from it)."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "cpu family", "model", "stepping", "cache size", "flags", "Features") \
                        and key not in fields:
                    fields[key] = value.strip()
                if not line.strip() and fields:
                    break  # the first processor's block is enough
    except OSError:
        pass
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    model = fields.get("model name") or platform.processor() or None
    numbers = "/".join(fields[k] for k in ("cpu family", "model", "stepping") if k in fields)
    return {"cpu_model": f"{model} ({numbers})" if model and numbers else model,
            "cpu_flags": [flag for flag in _ISA_FLAGS if flag in flags],
            "cpu_cache": fields.get("cache size")}


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
