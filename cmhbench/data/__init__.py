"""Datasets: the canonical HDF5 format, loading and validation, and device-side batching."""

from cmhbench.data.dataset import Dataset, SPLIT_NAMES
from cmhbench.data.format import load_canonical, write_canonical

__all__ = ["Dataset", "SPLIT_NAMES", "load_canonical", "write_canonical"]
