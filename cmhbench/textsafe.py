"""Text from files, plugins and users, made safe to print.

Anything cmhbench did not write itself (a path, a plugin's name or description, a reason read from a
result file, an exception message) may hold terminal control sequences (ESC, OSC, BEL, a bare
carriage return that overwrites the line) or text that rich would read as markup (``[/x]`` crashes
rich, ``[nan]`` silently disappears). Every such string passes through here before it is printed.
"""

from __future__ import annotations

import re

from rich.markup import escape
from rich.text import Text

# C0 controls except tab and newline, DEL, and the C1 controls (0x80-0x9f, which include CSI and OSC)
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean(text: object) -> str:
    """``text`` as a string without control characters (tab and newline kept)."""
    return _CONTROL.sub("", str(text))


def safe(text: object) -> str:
    """``text`` cleaned and escaped, to be embedded in a rich markup string."""
    return escape(clean(text))


def cell(text: object, style: str | None = None) -> Text:
    """A table cell that is never parsed as markup."""
    return Text(clean(text), style=style or "")
