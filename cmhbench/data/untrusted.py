"""Reading arrays from files nobody vouched for: sizes are checked as declared, before anything is
read, and nothing outside the file is followed (external links, virtual datasets and external raw
storage would read other files, /dev/zero or /etc/passwd as if they were data)."""

from __future__ import annotations

import importlib
import pickle
import stat
import zipfile
from pathlib import Path

import h5py
import numpy as np

from cmhbench.errors import CmhbenchError

#: the most one array may declare when it is read whole (labels, texts, codes); images are read in blocks
MAX_ARRAY_BYTES = 4 * 1024**3


def check_regular_file(path: Path, what: str) -> None:
    """A missing file, and anything that is not a regular file (a FIFO would block, /dev/zero never
    ends), each in one line that says what it is."""
    if not path.exists():
        raise CmhbenchError(f"{what} {path} does not exist")
    if path.is_dir():
        raise CmhbenchError(f"{what} {path} is a folder, not a file")
    mode = path.stat().st_mode
    kinds = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISSOCK, "a socket"))
    for test, kind in kinds:
        if test(mode):
            raise CmhbenchError(f"{what} {path} is {kind}, not a regular file")


def check_declared_size(shape: tuple[int, ...] | None, dtype: np.dtype, where: str, limit: int = MAX_ARRAY_BYTES) -> None:
    if shape is None:  # an HDF5 dataset with a null dataspace (h5py.Empty): no array to read
        raise CmhbenchError(f"{where}: an empty HDF5 dataset (no shape, h5py.Empty {np.dtype(dtype)}); expected an array")
    size = int(np.prod(shape, dtype=np.float64)) * np.dtype(dtype).itemsize
    if size > limit:
        raise CmhbenchError(f"{where}: declares {tuple(shape)} {np.dtype(dtype)} ({size:,} bytes), more than "
                            f"{limit:,} bytes can be read at once")


def check_hdf5_dataset(node: h5py.Dataset, where: str) -> None:
    """Refuse a dataset whose data would come from outside its file."""
    if node.is_virtual:
        raise CmhbenchError(f"{where}: a virtual dataset (its data lives in other files); store the arrays themselves")
    if node.external:
        raise CmhbenchError(f"{where}: stored in external raw files ({node.external[0][0]!r}); store the arrays "
                            "inside the file")


def hdf5_links_outside(group: h5py.Group, prefix: str = "", seen: set | None = None) -> list[str]:
    """Names of the external links anywhere under ``group``, found without following them."""
    seen = set() if seen is None else seen
    found: list[str] = []
    for name in group:
        link = group.get(name, getlink=True)
        if isinstance(link, h5py.ExternalLink):
            found.append(prefix + name)
        elif isinstance(link, h5py.HardLink) and isinstance(group[name], h5py.Group) and group[name].id not in seen:
            seen.add(group[name].id)
            found += hdf5_links_outside(group[name], f"{prefix}{name}/", seen)
    return found


def check_hdf5_file(handle: h5py.File, path: Path) -> None:
    outside = hdf5_links_outside(handle)
    if outside:
        raise CmhbenchError(f"{path}: '{outside[0]}' is an external link into another file; store the arrays inside "
                            "the file")


def npz_declared(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Each .npz member's declared shape and dtype, read from its header only."""
    declared = {}
    with zipfile.ZipFile(path) as archive:
        total = 0
        for info in archive.infolist():
            if not info.filename.endswith(".npy"):
                raise CmhbenchError(f"{path}: member {info.filename!r} is not a .npy array (numpy.savez writes only those)")
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, _, dtype = read_header(member)
            declared[info.filename[:-4]] = (shape, dtype)
            total += int(np.prod(shape, dtype=np.float64)) * np.dtype(dtype).itemsize
    check_declared_size((total,), np.dtype(np.uint8), f"{path}: all its arrays together", 2 * MAX_ARRAY_BYTES)
    return declared


def read_npz(path: Path, what: str) -> dict[str, np.ndarray]:
    """Every array of an untrusted .npz (a regular file; sizes checked as declared before reading;
    no pickles), or one line naming ``what`` it was meant to be."""
    check_regular_file(path, what)
    try:
        for key, (shape, dtype) in npz_declared(path).items():
            check_declared_size(shape, dtype, f"{path}: '{key}'")
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except CmhbenchError:
        raise
    except Exception as exc:
        raise CmhbenchError(f"{what} {path} is not a readable .npz file ({exc})") from None


#: what a pickle of numpy arrays may name: the array and dtype reconstructors of numpy 1 and 2, and
#: the codec call protocol 2 writes bytes with
_PICKLE_GLOBALS = {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
                   *((module, name) for module in ("numpy.core.multiarray", "numpy._core.multiarray")
                     for name in ("_reconstruct", "scalar")),
                   *((module, "_frombuffer") for module in ("numpy.core.numeric", "numpy._core.numeric"))}


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """An unpickler that builds dicts, lists, numbers, strings and numpy arrays, and refuses every
    other global (a pickle can name any callable, so loading one unchecked runs its author's code)."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _PICKLE_GLOBALS:
            raise pickle.UnpicklingError(f"it names {module}.{name}; only numpy arrays are read from a pickle")
        # a file from numpy 1 names numpy.core, one from numpy 2 numpy._core: either reads under either
        for candidate in (module.replace("numpy.core", "numpy._core"), module.replace("numpy._core", "numpy.core")):
            try:
                return getattr(importlib.import_module(candidate), name)
            except ModuleNotFoundError:
                continue
        raise pickle.UnpicklingError(f"{module}.{name} is not in this numpy")


def read_pickle_arrays(path: Path, what: str) -> dict[str, np.ndarray]:
    """The arrays of an untrusted pickle holding one dict of arrays (as UCMFH's feature files do),
    read without running anything the file names; one line naming ``what`` when it is not that."""
    check_regular_file(path, what)
    check_declared_size((path.stat().st_size,), np.dtype(np.uint8), f"{path}", 2 * MAX_ARRAY_BYTES)
    try:
        with open(path, "rb") as handle:
            value = _ArraysOnlyUnpickler(handle).load()
    except Exception as exc:
        raise CmhbenchError(f"{what} {path} is not a readable pickle of numpy arrays ({exc})") from None
    if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
        raise CmhbenchError(f"{what} {path} holds a {type(value).__name__}; expected a dict of named arrays "
                            "(e.g. 'image', 'text', 'label')")
    arrays = {}
    for key, array in value.items():
        try:
            array = np.asarray(array)
        except ValueError:  # numpy refuses nested lists of unequal lengths
            raise CmhbenchError(f"{what} {path}: '{key}' is a ragged list (rows of different lengths); expected a "
                                "numeric array") from None
        if array.dtype.kind not in "biuf":
            raise CmhbenchError(f"{what} {path}: '{key}' is {array.dtype}, not a numeric array")
        arrays[key] = array
    return arrays
