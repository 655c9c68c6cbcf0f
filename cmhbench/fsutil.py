"""File-system helpers: atomic writes, so that nothing half-written is ever left behind."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import json
import os
import re
import shutil
import socket
import stat
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

from cmhbench import interrupts
from cmhbench.errors import CmhbenchError

# A temporary file or folder of someone else's host is only presumed abandoned after this long
_FOREIGN_STALE_SECONDS = 24 * 3600


@functools.cache
def _pid_namespace() -> str:
    """The process-id namespace (containers sharing a host name may not share it), "0" where unknown.
    Read once: every atomic write asks."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return "0"


def owner_tag() -> str:
    """``pid-namespace@host``: written into temporary names, so that a later process can tell an
    abandoned one (its writer is dead) from one being written right now. A pid is only looked up
    where it means the same process: same host name and same pid namespace."""
    return f"{os.getpid()}-{_pid_namespace()}@{socket.gethostname()}"


def _abandoned(path: Path, tag: str) -> bool:
    process, _, host = tag.partition("@")
    pid_text, _, namespace = process.partition("-")
    if host == socket.gethostname() and namespace == _pid_namespace() and pid_text.isdigit():
        try:
            os.kill(int(pid_text), 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # alive, someone else's
            return False
        return False
    try:
        return time.time() - path.lstat().st_mtime > _FOREIGN_STALE_SECONDS
    except FileNotFoundError:
        return False


def remove_abandoned(parent: Path, stem: str, suffix: str = "") -> None:
    """Remove ``.{stem}.{pid-namespace@host}.XXXX{suffix}`` temporaries whose writer died (killed, power cut):
    what an interrupted write left behind is cleared by the next write of the same target."""
    pattern = re.compile(rf"^\.{re.escape(stem)}\.(\d+-\d+@.+)\.[^.]+{re.escape(suffix)}$")
    try:
        candidates = list(parent.iterdir())
    except FileNotFoundError:
        return
    for path in candidates:
        match = pattern.match(path.name)
        if match and _abandoned(path, match.group(1)):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def exchange_paths(a: Path, b: Path) -> bool:
    """Swap two existing paths in one atomic step (Linux renameat2 RENAME_EXCHANGE). False where the
    system cannot (another OS, an old kernel, a file system without it): the caller falls back."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it replaces ``target`` in one rename.

    On any exception (including KeyboardInterrupt) the temporary file is removed and ``target`` is
    untouched, so readers see either the old complete file or the new complete file. A temporary
    left by a killed writer is removed by the next write of the same target.
    """
    target = Path(target)
    check_writable_target(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_abandoned(target.parent, target.name, ".partial")
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.{owner_tag()}.", suffix=".partial", dir=target.parent)
    except OSError as exc:
        raise CmhbenchError(_cannot_write(target, exc)) from None
    os.close(fd)
    tmp = Path(tmp_name)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the final file normal permissions
    try:
        yield tmp
        interrupts.raise_if_received()  # a Ctrl-C swallowed inside the writer must not commit its file
        os.replace(tmp, target)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if _out_of_space(exc, target):
            raise CmhbenchError(f"cannot write {target}: no space left on its device "
                                f"({shutil.disk_usage(target.parent).free:,} bytes free); nothing was replaced") from None
        if isinstance(exc, OSError) and exc.filename in (str(tmp), str(target)):
            raise CmhbenchError(_cannot_write(target, exc)) from None
        raise


_KINDS = ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"))


def check_writable_target(target: Path) -> None:
    """Refuse to replace anything but a regular file: an atomic rename over /dev/null, a FIFO or a
    symbolic link would replace the node itself, not write into it."""
    try:
        mode = target.lstat().st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise CmhbenchError(_cannot_write(target, exc)) from None
    for test, kind in _KINDS:
        if test(mode):
            raise CmhbenchError(f"cannot write {target}: it is {kind}, not a regular file; give the path of a "
                                "file to create or replace")


def _cannot_write(target: Path, exc: OSError) -> str:
    parent = next((p for p in [target.parent, *target.parent.parents] if p.exists()), None)
    if parent is not None and not parent.is_dir():
        return f"cannot write {target}: {parent} is a file, not a folder"
    reason = {errno.EACCES: "permission denied", errno.EPERM: "permission denied",
              errno.EROFS: "the file system is read-only", errno.ENOSPC: "no space left on its device",
              errno.ENOTDIR: "a part of the path is a file, not a folder"}.get(exc.errno, exc.strerror or str(exc))
    return f"cannot write {target}: {reason}"


def _out_of_space(exc: BaseException, target: Path) -> bool:
    """ENOSPC however the writer reports it: h5py and numpy as OSError, torch's zip writer as a
    RuntimeError ("unexpected pos") when the disk filled under it."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return True
    if isinstance(exc, RuntimeError) and ("unexpected pos" in str(exc) or "No space left" in str(exc)):
        try:
            return shutil.disk_usage(target.parent).free < 64 * 1024**2
        except OSError:
            return False
    return "errno = 28" in str(exc) or "No space left on device" in str(exc)


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


#: generated data that every run may share (deterministic, costly to regenerate): the toy set, its
#: pretrained backbones and frozen features; everything else a method caches (DAPH's proxies) is per run
_SHARED_CACHES = ("toy", "toy-cnn", "clip-tiny", "features")


@contextlib.contextmanager
def isolated_cache_home(folder: Path) -> Iterator[None]:
    """Run with a cache home of its own under ``folder``, so that what a method caches across runs
    (DAPH's stage-1 proxies) is made again in every run (and none lands in the user's cache); the
    shared caches are links to the real ones."""
    real = cache_home()
    home = folder / "cache"
    home.mkdir(parents=True, exist_ok=True)
    for name in _SHARED_CACHES:
        (real / name).mkdir(parents=True, exist_ok=True)
        if not (home / name).exists():
            (home / name).symlink_to(real / name, target_is_directory=True)
    previous = os.environ.get("CMHBENCH_HOME")
    os.environ["CMHBENCH_HOME"] = str(home)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("CMHBENCH_HOME", None)
        else:
            os.environ["CMHBENCH_HOME"] = previous
