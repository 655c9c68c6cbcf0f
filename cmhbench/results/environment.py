"""Which differences between two runs' environments explain different numbers (torch-free: the
leaderboard compares environments without running anything)."""

from __future__ import annotations

from typing import Any, Mapping

#: the environment fields that decide a run's arithmetic (the host name does not: machines of one kind
#: share it here; nor does the kernel build in ``platform``, which differs between such machines), and
#: the digest of the image encoder's starting weights (the toy's toy-cnn is pretrained on first use, so
#: on each machine's own arithmetic)
REPRODUCIBILITY_FIELDS = ("python", "torch", "numpy", "cuda", "device", "gpu", "cpu", "cpu_model",
                          "cpu_flags", "cpu_cache", "cpu_capability", "threads", "image_weights_sha256", "tf32")


def reproducibility_key(env: Mapping[str, Any]) -> tuple:
    """Equal for two environments that must give a run the same numbers. Results written before the
    CPU's kernels and the thread count were recorded cannot show that: for them the platform string
    (which names the machine's kernel build) stands in, so two such machines count as two environments."""
    key = tuple(str(env.get(field)) for field in REPRODUCIBILITY_FIELDS)
    return key if "cpu_capability" in env else key + (env.get("platform"),)
