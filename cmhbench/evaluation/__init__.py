"""The shared evaluator: Hamming ranking (mAP, tie-aware mAP, mAP@K, P@K, PR by radius) and hash
lookup within radius 2, exact and fast on CPU and GPU.

The names below are imported on first use, so that ``cmhbench.evaluation.directions`` (torch-free)
can be imported without the evaluator and torch.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DIRECTIONS", "check_directions", "evaluate", "evaluate_directions"]


def __getattr__(name: str) -> Any:
    if name in ("DIRECTIONS", "check_directions"):
        from cmhbench.evaluation import directions

        return getattr(directions, name)
    if name in ("evaluate", "evaluate_directions"):
        from cmhbench.evaluation import evaluator

        return getattr(evaluator, name)
    raise AttributeError(f"module 'cmhbench.evaluation' has no attribute {name!r}")
