"""Reading the arrays of dataset source files, whatever wrote them.

Every array is exposed in its *logical* shape, the one its author saw: MATLAB v7.3 files are HDF5
with every array stored transposed (MATLAB is column-major), so their axes are reversed here; MATLAB
v5 files (scipy) and HDF5/npz files written from Python are read as they are. Arrays stay on disk
until read, and ``read_items`` reads a block of items along a chosen axis, so that a 30 GB image
array converts in bounded memory.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import h5py
import numpy as np

from cmhbench.data.untrusted import (check_declared_size, check_hdf5_dataset, check_hdf5_file, check_regular_file,
                                     npz_declared, read_pickle_arrays)
from cmhbench.errors import CmhbenchError

#: pickles are read only as a dict of numpy arrays (UCMFH's CLIP feature files), nothing else
PICKLE_SUFFIXES = (".pkl", ".pickle")


@dataclass
class SourceArray:
    """One named array in one source file, in its logical (author's) axis order."""

    file: Path
    key: str
    shape: tuple[int, ...]
    dtype: np.dtype
    _read: Callable[[tuple], np.ndarray]  # index in logical axes -> array in logical axes

    def read(self) -> np.ndarray:
        check_declared_size(self.shape, self.dtype, str(self.file) + f": '{self.key}'")
        return self._read(tuple(slice(None) for _ in self.shape))

    def read_items(self, axis: int, start: int, stop: int) -> np.ndarray:
        """Items start..stop-1 along ``axis``, with that axis moved first."""
        index = [slice(None)] * len(self.shape)
        index[axis] = slice(start, stop)
        return np.moveaxis(self._read(tuple(index)), axis, 0)

    def __str__(self) -> str:
        return f"{self.file.name}:{self.key}"


def _is_matlab_v73(handle: h5py.File) -> bool:
    userblock = handle.userblock_size
    if userblock >= 128:
        with open(handle.filename, "rb") as raw:
            if raw.read(6) == b"MATLAB":
                return True
    return any("MATLAB_class" in node.attrs for node in handle.values() if isinstance(node, h5py.Dataset))


def _hdf5_arrays(path: Path) -> dict[str, SourceArray]:
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise CmhbenchError(f"{path} is not a readable HDF5 or MATLAB v7.3 file ({exc}); it may be truncated") from None
    check_hdf5_file(handle, path)
    transposed = _is_matlab_v73(handle)
    arrays = {}

    def visit(name: str, node: Any) -> None:
        if not isinstance(node, h5py.Dataset) or name.startswith("#refs#") or node.shape is None:
            return  # groups, MATLAB's cell contents and null dataspaces (h5py.Empty) are no arrays
        check_hdf5_dataset(node, f"{path}: '{name}'")
        if transposed:
            def read(index, node=node):
                # logical axes are the stored axes reversed
                return np.asarray(node[tuple(reversed(index))]).transpose()
            shape = tuple(reversed(node.shape))
        else:
            def read(index, node=node):
                return np.asarray(node[index])
            shape = tuple(node.shape)
        arrays[name] = SourceArray(path, name, shape, node.dtype, read)

    handle.visititems(visit)
    return arrays


def _in_memory(path: Path, values: dict[str, np.ndarray]) -> dict[str, SourceArray]:
    out = {}
    for key, value in values.items():
        value = np.asarray(value)
        out[key] = SourceArray(path, key, value.shape, value.dtype, lambda index, v=value: v[index])
    return out


def _read_npy(path: Path) -> np.ndarray:
    """A .npy array mapped from disk; a truncated file or a bad header is one line, as for .npz."""
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        # numpy says "mmap length is greater than file size" for a cut file: say what that means
        raise CmhbenchError(f"{path} is not a readable .npy file ({exc}); it may be truncated") from None


def read_source(path: str | Path) -> dict[str, SourceArray]:
    """All arrays of a .mat (v5 or v7.3), .h5/.hdf5, .npz, .npy or .pkl (a dict of numpy arrays) file, by key."""
    path = Path(path)
    check_regular_file(path, "source file")
    suffix = path.suffix.lower()
    with open(path, "rb") as raw:
        head = raw.read(8)
    if suffix == ".npz" or head.startswith(b"PK"):
        try:
            for key, (shape, dtype) in npz_declared(path).items():
                check_declared_size(shape, dtype, f"{path}: '{key}'")
            with np.load(path, allow_pickle=False) as data:
                return _in_memory(path, {k: data[k] for k in data.files})
        except (zipfile.BadZipFile, ValueError, OSError) as exc:
            raise CmhbenchError(f"{path} is not a readable .npz file ({exc})") from None
    if suffix in PICKLE_SUFFIXES:
        return _in_memory(path, read_pickle_arrays(path, "source file"))
    if suffix == ".npy":
        return _in_memory(path, {path.stem: _read_npy(path)})
    if head.startswith(b"\x89HDF") or h5py.is_hdf5(path):
        return _hdf5_arrays(path)
    if suffix == ".mat":
        import scipy.io

        try:
            values = scipy.io.loadmat(path)
        except Exception as exc:
            raise CmhbenchError(f"{path} is not a readable MATLAB file ({type(exc).__name__}: {exc})") from None
        return _in_memory(path, {k: v for k, v in values.items() if not k.startswith("__")})
    raise CmhbenchError(f"{path}: unsupported file type; expected .mat, .h5/.hdf5, .npz, .npy or .pkl")


def sha256_file(path: Path, block: int = 1 << 22) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(block):
            digest.update(chunk)
    return digest.hexdigest()
