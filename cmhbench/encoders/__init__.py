"""Encoders: raw modality input -> feature vector. Methods put their own heads on top."""

from cmhbench.encoders.base import Encoder

__all__ = ["Encoder"]
