"""Retrieval directions and their validation (torch-free: the CLI checks --directions before it
imports anything heavy)."""

from __future__ import annotations

from typing import Iterable

from cmhbench.errors import CmhbenchError

# Distances are stored as int16 on the GPU path (uint16 on the CPU path): the widest code scored exactly
MAX_BITS = 32767

DIRECTIONS = {"i2t": ("image", "text"), "t2i": ("text", "image"),
              "i2i": ("image", "image"), "t2t": ("text", "text")}


def check_directions(directions: Iterable[str], where: str | None = None) -> None:
    """Refuse unknown or repeated direction names before any work; ``where`` names their source
    (default: the ``--directions`` option)."""
    directions = list(directions)
    if not directions or len(set(directions)) != len(directions) or any(d not in DIRECTIONS for d in directions):
        raise CmhbenchError(f"{where or '--directions ' + repr(','.join(directions))}: expected distinct "
                            f"names among {', '.join(DIRECTIONS)}")
