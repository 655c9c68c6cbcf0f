"""The data format the CLIP-era methods circulate (DCHMT, MITH and the toolkits after them).

Three files beside the image folder, as kalenforn/DCHMT's ``dataset/make_*.py`` and
DarrenZZhang/MM23-MITH's builders write them (``scipy.io.savemat``: MATLAB v5; a MATLAB ``-v7.3``
re-save is read too):

* ``index.mat``, key ``index``: one image path per item (a space-padded char matrix; paths are the
  builder's own, often absolute on another machine: an image is found as written, or by its last
  path components under a source folder);
* ``caption.mat``, key ``caption``: one caption per item, a char matrix (N×1 cells of one string,
  MIRFLICKR's tags joined by spaces) or a cell array of several captions per item (DCHMT's MS-COCO:
  the first is kept, DCHMT draws one at random at every read); NUS-WIDE's ``caption.txt`` holds one
  caption per line instead;
* ``label.mat``, key ``category`` (DCHMT) or ``label`` (MITH): multi-hot N×C.

Images are decoded and resized to 224×224 with bicubic filtering, the transform both releases apply
to query and retrieval images. The split is MITH's (``load_data.py:split_data``): a permutation of
the items drawn with numpy's seed 1, the first ``query`` items as queries, the next ``train`` for
training, everything but the queries as the retrieval set. It is MITH's queries only on MITH's
files: DCHMT's builders order the items otherwise, so the prepared version names the builder
(``mith-files`` or ``dchmt-files``, from the label key).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np

from cmhbench.data.layouts import ItemArray, Items, check_numeric, check_orientation, to_labels
from cmhbench.data.readers import SourceArray
from cmhbench.data.untrusted import check_regular_file
from cmhbench.errors import CmhbenchError

IMAGE_SIZE = 224
LABEL_KEYS = ("category", "label")  # DCHMT's, MITH's
#: the layout recorded in the prepared version, by the builder the label key gives away: DCHMT's
#: make_mirflickr25k.py orders items by string-sorted ids and takes the raw tags, MITH's keeps the
#: cleaned lists' order, so the two builders' files are different item orders (and splits)
LAYOUTS = {"category": "dchmt-files", "label": "mith-files"}
SPLIT_SEED = 1  # MITH's split_data: np.random.seed(seed=1), "fixed to 1 for all experiments"


def dchmt_split(query: int, train: int):
    """MITH's split of n items (as `DatasetProfile.fixed_split` gives it): query and train rows."""

    def split(num_items: int) -> dict[str, np.ndarray]:
        if query + train > num_items:
            raise CmhbenchError(f"the DCHMT split needs {query} queries and {train} training items; the files "
                                f"hold {num_items} items")
        permutation = np.random.RandomState(SPLIT_SEED).permutation(num_items)  # legacy: the same on every numpy
        return {"query": permutation[:query], "train": permutation[query:query + train]}

    return split


def _is_hdf5(path: Path) -> bool:
    return h5py.is_hdf5(path)


def _decode_chars(codes: np.ndarray) -> str:
    return "".join(map(chr, np.asarray(codes, dtype=np.uint32).ravel())).strip()


def _v73_strings(path: Path, key: str) -> list[str]:
    """A char matrix, or a cell array of char arrays (of cells: the first string), from a v7.3 file."""
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise CmhbenchError(f"{path} is not a readable MATLAB v7.3 file ({exc}); it may be truncated") from None
    with handle:
        if key not in handle:
            raise CmhbenchError(f"{path}: no key '{key}' (keys: {', '.join(k for k in handle if not k.startswith('#'))})")
        node = handle[key]
        if not isinstance(node, h5py.Dataset):  # a MATLAB struct is stored as an HDF5 group
            raise CmhbenchError(f"{path}: '{key}' is a group (a MATLAB struct?); expected strings (char or cell)")
        kind = node.attrs.get("MATLAB_class", b"")
        kind = kind.decode() if isinstance(kind, bytes) else str(kind)
        if kind == "char":  # stored transposed: one column of character codes per string
            return [_decode_chars(column) for column in np.asarray(node).T]
        if kind == "cell":
            _check_references(node, path, key)
            return [_first_string(handle, ref, path, key) for ref in np.asarray(node).T.reshape(-1)]
        raise CmhbenchError(f"{path}: '{key}' is a MATLAB {kind or node.dtype} array; expected strings (char or cell)")


def _check_references(node: h5py.Dataset, path: Path, key: str) -> None:
    """A MATLAB cell is stored as object references; numbers marked 'cell' are not one."""
    if h5py.check_dtype(ref=node.dtype) is not h5py.Reference:
        raise CmhbenchError(f"{path}: '{key}' is marked a MATLAB cell array but holds {node.dtype} numbers, not "
                            "references to its cells; expected strings (char or cell)")


def _first_string(handle: h5py.File, ref, path: Path, key: str) -> str:
    try:
        node = handle[ref]
    except (ValueError, KeyError, TypeError) as exc:  # a null or dangling reference
        raise CmhbenchError(f"{path}: '{key}' holds a cell reference that leads nowhere ({exc}); expected strings") from None
    if not isinstance(node, h5py.Dataset):
        raise CmhbenchError(f"{path}: '{key}' holds a cell that is a group (a MATLAB struct?); expected strings")
    if node.attrs.get("MATLAB_empty"):  # MATLAB stores an empty char or cell as its dimensions, flagged
        return ""
    kind = node.attrs.get("MATLAB_class", b"")
    kind = kind.decode() if isinstance(kind, bytes) else str(kind)
    if kind == "cell":  # a cell of several captions: the first
        _check_references(node, path, key)
        return _first_string(handle, np.asarray(node).T.reshape(-1)[0], path, key)
    if kind != "char":
        raise CmhbenchError(f"{path}: '{key}' holds a MATLAB {kind} cell; expected strings")
    return _decode_chars(np.asarray(node).T)


def _v5_strings(path: Path, key: str) -> list[str]:
    import scipy.io

    try:
        values = scipy.io.loadmat(path)
    except Exception as exc:
        raise CmhbenchError(f"{path} is not a readable MATLAB file ({type(exc).__name__}: {exc})") from None
    if key not in values:
        raise CmhbenchError(f"{path}: no key '{key}' (keys: {', '.join(k for k in values if not k.startswith('__'))})")
    value = values[key]
    if value.dtype.kind == "U":  # a char matrix: one space-padded string per item (N, or N×1 from [[s], ...])
        return [str(s).strip() for s in value.reshape(-1)]
    if value.dtype == object:  # a cell array: DCHMT's MS-COCO, several captions per item
        cells = value[0] if value.shape[0] == 1 else value.reshape(-1)
        return [_first_of_cell(cell, path, key) for cell in cells]
    raise CmhbenchError(f"{path}: '{key}' is {value.dtype} {value.shape}; expected strings (char or cell)")


def _first_of_cell(cell, path: Path, key: str) -> str:
    cell = np.asarray(cell)
    if cell.dtype == object:
        return _first_of_cell(cell.reshape(-1)[0], path, key) if cell.size else ""
    if cell.dtype.kind != "U":
        raise CmhbenchError(f"{path}: '{key}' holds a {cell.dtype} cell; expected strings")
    return str(cell.reshape(-1)[0]).strip() if cell.size else ""


def read_strings(path: Path, key: str) -> list[str]:
    """One string per item from a MATLAB v5 or v7.3 file."""
    check_regular_file(path, "source file")
    return _v73_strings(path, key) if _is_hdf5(path) else _v5_strings(path, key)


def read_labels(path: Path, num_labels: int) -> tuple[np.ndarray, str]:
    """The labels and the key they were under."""
    from cmhbench.data.readers import read_source

    arrays = read_source(path)
    key = next((k for k in LABEL_KEYS if k in arrays), None)
    if key is None:
        raise CmhbenchError(f"{path}: no labels under {' or '.join(LABEL_KEYS)} (keys: {', '.join(arrays)})")
    values = check_numeric(arrays[key], "labels").read()
    if values.ndim == 2 and values.shape[1] != num_labels and values.shape[0] == num_labels:
        values = values.T  # a v5 file written from MATLAB's C×N
    return to_labels(values, num_labels, f"{path}: '{key}'"), key


def read_captions(path: Path) -> list[str]:
    if path.suffix == ".txt":  # DCHMT's NUS-WIDE: one caption per line
        check_regular_file(path, "source file")
        try:
            return [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        except UnicodeDecodeError as exc:
            raise CmhbenchError(f"{path}: not UTF-8 text ({exc}); expected one caption per line") from None
    return read_strings(path, "caption")


def find_files(sources: Sequence[str | Path]) -> tuple[dict[str, Path], list[Path]]:
    """index.mat, caption.mat or caption.txt and label.mat (in a source folder or named), and the
    folders to look for images in."""
    files: dict[str, Path] = {}
    folders: list[Path] = []
    for source in sources:
        path = Path(source).expanduser()
        if not path.exists():
            raise CmhbenchError(f"source {path} does not exist")
        candidates = [path / name for name in ("index.mat", "caption.mat", "caption.txt", "label.mat")] \
            if path.is_dir() else [path]
        if path.is_dir():
            folders.append(path)
        for candidate in candidates:
            role = {"index.mat": "index", "caption.mat": "caption", "caption.txt": "caption",
                    "label.mat": "label"}.get(candidate.name)
            if role and candidate.is_file() and role not in files:
                files[role] = candidate
    missing = [name for name in ("index", "caption", "label") if name not in files]
    if missing:
        raise CmhbenchError("the DCHMT layout needs index.mat, caption.mat (or caption.txt) and label.mat and the "
                            f"image folder; missing {', '.join(m + ('.mat' if m != 'caption' else '.mat/.txt') for m in missing)} "
                            f"(looked in {', '.join(str(Path(s)) for s in sources)})")
    return files, folders


def locate_image(written: str, folders: Sequence[Path], index_file: Path) -> Path:
    """The image the builder wrote as ``written``: its last one, two or three path components under a
    source folder (or beside index.mat), else the path as written (the builder's own machine)."""
    parts = Path(written.replace("\\", "/")).parts
    for folder in [*folders, index_file.parent]:
        for depth in (1, 2, 3):
            candidate = folder.joinpath(*parts[-depth:])
            if candidate.is_file():
                return candidate
    if Path(written).is_absolute() and Path(written).is_file():
        return Path(written)
    raise CmhbenchError(f"image {written} (listed in {index_file}) was not found as written nor under "
                        f"{', '.join(str(f) for f in folders) or index_file.parent}; give the image folder with --source")


def read_image(path: Path) -> np.ndarray:
    from PIL import Image

    check_regular_file(path, "image")
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB").resize((IMAGE_SIZE, IMAGE_SIZE), Image.BICUBIC), dtype=np.uint8)
    except Exception as exc:  # PIL raises OSError subclasses, DecompressionBombError, ValueError, ...
        raise CmhbenchError(f"image {path} cannot be decoded ({exc})") from None


def read_dchmt_files(sources: Sequence[str | Path], *, num_labels: int, counts: Sequence[int],
                     orientation: str = "auto") -> Items:
    """The items of a DCHMT-format dataset, images read lazily in blocks (see the module docstring)."""
    check_orientation(orientation)  # unused here (paths, captions and labels have one item axis), but checked
    files, folders = find_files(sources)
    image_paths = read_strings(files["index"], "index")
    captions = read_captions(files["caption"])
    labels, label_key = read_labels(files["label"], num_labels)
    n = len(image_paths)
    for role, count in (("caption", len(captions)), ("label", len(labels))):
        if count != n:
            raise CmhbenchError(f"{files[role]} has {count} items but {files['index']} lists {n} images")
    if n not in counts:
        raise CmhbenchError(f"{files['index']} lists {n} images; this dataset's DCHMT files hold "
                            f"{' or '.join(f'{c:,}' for c in counts)} (another cleaning is another dataset)")

    def read(index: tuple) -> np.ndarray:
        rows = range(n)[index[0]]
        return np.stack([read_image(locate_image(image_paths[r], folders, files["index"])) for r in rows])

    source = SourceArray(files["index"], "index", (n, IMAGE_SIZE, IMAGE_SIZE, 3), np.dtype(np.uint8), read)
    empty = sum(1 for c in captions if not c)
    return Items(images=ItemArray([(source, 0)], "images"), texts=None, captions=captions, labels=labels,
                 layout=LAYOUTS[label_key], files=[files["index"], files["caption"], files["label"]],
                 notes=[f"{n} captions ({empty} empty)"], sources={"labels": f"{files['label']}: '{label_key}'"})
