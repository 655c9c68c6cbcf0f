"""Ctrl-C and SIGTERM, remembered as well as raised.

Python prints and drops an exception raised while it runs a weakref or finaliser callback (h5py
closes its objects in them), so a signal that lands there would be lost and the command would go on
to finish and exit 0. The handlers therefore also record the signal, and every atomic write checks
the record before it replaces its target (`raise_if_received`), as the CLI does before it exits 0.
"""

from __future__ import annotations

import signal
from typing import Callable


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that writers clean up as they do on Ctrl-C."""


_received: int | None = None


def record(signum: int) -> None:
    global _received
    _received = signum


def _handle(signum: int, frame) -> None:
    record(signum)
    raise KeyboardInterrupt() if signum == signal.SIGINT else Terminated()


def raise_if_received() -> None:
    """Raise the recorded signal's exception again (it may have been swallowed where it landed)."""
    if _received == signal.SIGINT:
        raise KeyboardInterrupt()
    if _received == signal.SIGTERM:
        raise Terminated()


def install() -> Callable[[], None]:
    """Handle SIGINT and SIGTERM where Python's defaults are in place; returns what undoes it (the
    handlers this call replaced, and the record as it was)."""
    defaults = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}
    replaced = {signum: signal.getsignal(signum) for signum, default in defaults.items()
                if signal.getsignal(signum) is default}
    for signum in replaced:
        signal.signal(signum, _handle)
    earlier = _received

    def restore() -> None:
        global _received
        _received = earlier
        for signum, handler in replaced.items():
            signal.signal(signum, handler)
    return restore
