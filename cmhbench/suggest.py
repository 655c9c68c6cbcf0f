"""'Did you mean' suggestions for unknown names."""

from __future__ import annotations

import difflib
from typing import Iterable


def unknown_name_message(kind: str, name: str, known: Iterable[str]) -> str:
    """One line: the unknown name, the closest known ones, and the full list when short."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.7)
    # letters in another order score low on a short name (tyo against toy: 0.67)
    close = close or [k for k in known if sorted(k) == sorted(name)]
    message = f"unknown {kind} {name!r}"
    if close:
        message += "; did you mean " + " or ".join(repr(c) for c in close) + "?"
    if known:
        message += f" (known: {', '.join(known)})"
    else:
        message += f" (no {kind}s are registered)"
    return message
