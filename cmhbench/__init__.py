"""cmhbench: a benchmark suite for cross-modal hashing."""

from cmhbench.errors import CmhbenchError
from cmhbench.plugins import hookimpl

__version__ = "0.1.0"

__all__ = ["CmhbenchError", "hookimpl", "__version__"]
