"""The shared evaluator: Hamming ranking (mAP, tie-aware mAP, mAP@K, P@K, PR by radius) and hash
lookup within radius 2, exact and fast on CPU and GPU."""

from cmhbench.evaluation.evaluator import DIRECTIONS, check_directions, evaluate, evaluate_directions

__all__ = ["DIRECTIONS", "check_directions", "evaluate", "evaluate_directions"]
