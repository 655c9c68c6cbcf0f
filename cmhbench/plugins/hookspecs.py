"""The hooks a cmhbench plugin may implement. Each returns a list of frozen specs."""

from __future__ import annotations

from cmhbench.plugins import hookspec
from cmhbench.specs import DatasetSpec, EncoderSpec, MethodSpec


@hookspec
def cmhbench_register_methods() -> list[MethodSpec]:
    """Return the hashing methods this plugin provides."""


@hookspec
def cmhbench_register_datasets() -> list[DatasetSpec]:
    """Return the datasets this plugin provides."""


@hookspec
def cmhbench_register_encoders() -> list[EncoderSpec]:
    """Return the image or text encoders this plugin provides."""
