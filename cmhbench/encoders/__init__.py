"""Encoders: raw modality input -> feature vector. Methods put their own heads on top.

The base class is `cmhbench.encoders.base.Encoder`. This package imports nothing itself, so that
registering the built-in encoders (`cmhbench.encoders.plugin`) does not import torch.
"""
