"""Training context: device, precision, seeding, resumable epochs, progress and loss logging."""

from cmhbench.train.context import TrainContext, resolve_device

__all__ = ["TrainContext", "resolve_device"]
