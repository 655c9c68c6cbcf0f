"""cmhbench: a benchmark suite for cross-modal hashing."""

import os

# OpenMP threads that wait for work sleep instead of spinning: on a shared machine (a cluster node, a
# laptop running anything else) torch's default spinning burnt ~10x the CPU of the work itself
# (measured: toy CLIP pretraining beside other jobs, 90 CPU-s and 91 s wall against 10 CPU-s and
# 8.5 s). The runtime reads this when torch is loaded, so it holds where cmhbench is imported first
# (the CLI, sweeps, Slurm tasks); a value the user set is kept. It changes no arithmetic.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from cmhbench.errors import CmhbenchError
from cmhbench.plugins import hookimpl

__version__ = "0.1.0"

__all__ = ["CmhbenchError", "hookimpl", "__version__"]
