"""Training: the method's context, the harness's session, the epoch budget, checkpoints, progress."""

from cmhbench.train.context import TrainContext, resolve_device
from cmhbench.train.session import TrainingSession

__all__ = ["TrainContext", "TrainingSession", "resolve_device"]
