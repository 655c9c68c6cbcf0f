"""File-system helpers: atomic writes, so that nothing half-written is ever left behind."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it replaces ``target`` in one rename.

    On any exception (including KeyboardInterrupt) the temporary file is removed and ``target`` is
    untouched, so readers see either the old complete file or the new complete file.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the final file normal permissions
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json_atomic(target: str | os.PathLike, payload: Any, durable: bool = True) -> Path:
    """Write JSON atomically. ``durable`` also fsyncs it, so it survives a power cut, not only a
    crash. Bookkeeping that can be rebuilt skips that: on ext4 an fsync commits the journal and so
    flushes every file written meanwhile, e.g. the checkpoint of hundreds of MB just saved beside it."""
    with atomic_path(target) as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, indent=2, sort_keys=False)
            handle.write("\n")
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
    return Path(target)


def cache_home() -> Path:
    """Where prepared datasets and generated files live: $CMHBENCH_HOME, else
    $XDG_CACHE_HOME/cmhbench, else ~/.cache/cmhbench."""
    if os.environ.get("CMHBENCH_HOME"):
        return Path(os.environ["CMHBENCH_HOME"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "cmhbench"
