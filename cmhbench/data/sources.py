"""Feeding splits to a device in batches.

Two paths, chosen per dataset and device:

* **Resident**: the whole array goes to the device once (images as uint8, a quarter of float32), and
  a batch is one ``index_select`` there, so a training step does no per-item Python work and no
  host-to-device copy. Encoders normalise uint8 pixels on the device.
* **Streaming**: arrays too large for the device budget stay in the HDF5 file (or host memory) and
  are read in contiguous blocks of items by a background thread while the device works on the
  previous block; shuffling permutes the block order and the items within each block (the usual
  compromise for chunked storage: random enough for SGD, sequential enough for the disk).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch

from cmhbench.data.dataset import Dataset

# Fraction of free device memory that resident dataset arrays may take.
_DEVICE_BUDGET_FRACTION = 0.4
_STREAM_BLOCK_ITEMS = 4096


@dataclass
class Batch:
    """One batch of a split, on the device. ``positions`` index the split (0..len-1)."""

    positions: torch.Tensor
    labels: torch.Tensor
    images: torch.Tensor | None = None
    texts: torch.Tensor | None = None


def _device_budget(device: torch.device) -> int:
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free * _DEVICE_BUDGET_FRACTION)
    return 1 << 62  # host memory: arrays already loaded in RAM stay there


class _ArrayFeed:
    """One modality's array, either resident on the device or streamed in blocks."""

    def __init__(self, array: Any, device: torch.device, resident: bool):
        self.device = device
        self.array = array
        self.resident_tensor: torch.Tensor | None = None
        if resident:
            self.resident_tensor = torch.from_numpy(np.ascontiguousarray(array[()])).to(device)

    @property
    def is_resident(self) -> bool:
        return self.resident_tensor is not None

    def gather(self, dataset_rows: torch.Tensor) -> torch.Tensor:
        assert self.resident_tensor is not None
        return self.resident_tensor.index_select(0, dataset_rows)

    def read_rows(self, sorted_rows: np.ndarray) -> torch.Tensor:
        """Read rows (ascending dataset indices) from the backing store into a device tensor."""
        lo, hi = int(sorted_rows[0]), int(sorted_rows[-1]) + 1
        if hi - lo <= 2 * len(sorted_rows):  # dense enough: one contiguous read, then select
            block = np.asarray(self.array[lo:hi])[sorted_rows - lo]
        else:
            block = np.asarray(self.array[sorted_rows])
        tensor = torch.from_numpy(np.ascontiguousarray(block))
        if self.device.type == "cuda":
            return tensor.pin_memory().to(self.device, non_blocking=True)
        return tensor


class DeviceStore:
    """A dataset's arrays placed for one device; shared by all of its splits."""

    def __init__(self, dataset: Dataset, device: torch.device):
        self.dataset = dataset
        self.device = device
        budget = _device_budget(device)
        # a caption-only dataset has no texts array until a text tower's tokens take its place
        present = [key for key in ("texts", "images") if getattr(dataset, key) is not None]
        sizes = {key: _nbytes(getattr(dataset, key)) for key in present}
        in_host_memory = {key: isinstance(getattr(dataset, key), np.ndarray) for key in sizes}
        self.feeds: dict[str, _ArrayFeed] = {}
        for key in present:  # texts first: small and always worth keeping resident
            resident = in_host_memory[key] and sizes[key] <= budget
            if resident:
                budget -= sizes[key]
            self.feeds[key] = _ArrayFeed(getattr(dataset, key), device, resident)

    @classmethod
    def for_dataset(cls, dataset: Dataset, device: torch.device) -> "DeviceStore":
        cache = dataset.__dict__.setdefault("_device_stores", {})
        key = str(device)
        if key not in cache:
            cache[key] = cls(dataset, device)
        return cache[key]


def _nbytes(array: Any) -> int:
    return int(np.prod(array.shape)) * np.dtype(array.dtype).itemsize


class SplitData:
    """One split of a dataset (query, retrieval or train), ready to be batched on a device."""

    def __init__(self, dataset: Dataset, split: str, device: torch.device | str):
        self.device = torch.device(device)
        self.split = split
        self.store = DeviceStore.for_dataset(dataset, self.device)
        self.rows = np.asarray(dataset.splits[split], dtype=np.int64)
        self.rows_on_device = torch.from_numpy(self.rows).to(self.device)
        self.labels = torch.from_numpy(dataset.labels[self.rows]).to(self.device, torch.float32)
        self.image_kind = dataset.image_kind
        self.text_kind = dataset.text_kind
        self.text_dim = dataset.text_dim
        self.num_labels = dataset.num_labels
        #: told the size of every batch handed out (the harness's progress display); None: nobody
        self.on_batch: Callable[[int], None] | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def batches(
        self,
        batch_size: int,
        *,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        modalities: Sequence[str] = ("image", "text"),
        drop_last: bool = False,
    ) -> Iterator[Batch]:
        """Yield batches covering the split once. With ``shuffle``, the order comes from
        ``generator`` (a CPU generator, so that runs are reproducible on any device)."""
        if batch_size <= 0:
            raise ValueError("batch_size must be positive")
        keys = [{"image": "images", "text": "texts"}[m] for m in modalities]
        if all(self.store.feeds[k].is_resident for k in keys):
            batches = self._resident_batches(batch_size, shuffle, generator, keys, drop_last)
        else:
            batches = self._streamed_batches(batch_size, shuffle, generator, keys, drop_last)
        for batch in batches:
            if self.on_batch is not None:
                self.on_batch(len(batch.positions))
            yield batch

    def take(self, positions: np.ndarray) -> Batch:
        """One batch of the given split positions, in the given order."""
        rows = self.rows[positions]
        order = np.argsort(rows, kind="stable")
        arrays = {}
        for key, feed in self.store.feeds.items():
            if feed.is_resident:
                arrays[key] = feed.gather(torch.from_numpy(rows).to(self.device))
            else:  # read in file order, then put back in the order asked for
                back = torch.from_numpy(np.argsort(order)).to(self.device)
                arrays[key] = feed.read_rows(rows[order]).index_select(0, back)
        return self._make_batch(torch.from_numpy(np.asarray(positions)).to(self.device), arrays)

    def _make_batch(self, positions: torch.Tensor, arrays: dict[str, torch.Tensor]) -> Batch:
        return Batch(
            positions=positions,
            labels=self.labels.index_select(0, positions),
            images=arrays.get("images"),
            texts=arrays.get("texts"),
        )

    def _resident_batches(self, batch_size, shuffle, generator, keys, drop_last) -> Iterator[Batch]:
        n = len(self)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        order = order.to(self.device)
        stop = n - n % batch_size if drop_last else n
        for start in range(0, stop, batch_size):
            positions = order[start:start + batch_size]
            rows = self.rows_on_device.index_select(0, positions)
            yield self._make_batch(positions, {k: self.store.feeds[k].gather(rows) for k in keys})

    def _streamed_batches(self, batch_size, shuffle, generator, keys, drop_last) -> Iterator[Batch]:
        n = len(self)
        by_row = np.argsort(self.rows, kind="stable")  # split positions in file order
        blocks = [by_row[i:i + _STREAM_BLOCK_ITEMS] for i in range(0, n, _STREAM_BLOCK_ITEMS)]
        if shuffle:
            block_order = torch.randperm(len(blocks), generator=generator).tolist()
            blocks = [blocks[i] for i in block_order]

        def load(block_positions: np.ndarray) -> tuple[np.ndarray, dict[str, torch.Tensor]]:
            rows = self.rows[block_positions]
            arrays = {}
            for key in keys:
                feed = self.store.feeds[key]
                if feed.is_resident:
                    arrays[key] = feed.gather(torch.from_numpy(rows).to(self.device))
                else:
                    arrays[key] = feed.read_rows(rows)
            return block_positions, arrays

        carry_positions: list[torch.Tensor] = []
        carry_arrays: dict[str, list[torch.Tensor]] = {k: [] for k in keys}
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(load, blocks[0]) if blocks else None
            for index in range(len(blocks)):
                block_positions, arrays = pending.result()
                pending = pool.submit(load, blocks[index + 1]) if index + 1 < len(blocks) else None
                positions = torch.from_numpy(block_positions).to(self.device)
                if shuffle:
                    within = torch.randperm(len(block_positions), generator=generator).to(self.device)
                    positions = positions.index_select(0, within)
                    arrays = {k: v.index_select(0, within) for k, v in arrays.items()}
                carry_positions.append(positions)
                for k in keys:
                    carry_arrays[k].append(arrays[k])
                positions = torch.cat(carry_positions)
                arrays = {k: torch.cat(v) for k, v in carry_arrays.items()}
                full = len(positions) - len(positions) % batch_size
                for start in range(0, full, batch_size):
                    sl = slice(start, start + batch_size)
                    yield self._make_batch(positions[sl], {k: v[sl] for k, v in arrays.items()})
                carry_positions = [positions[full:]]
                carry_arrays = {k: [v[full:]] for k, v in arrays.items()}
        leftover = torch.cat(carry_positions) if carry_positions else torch.empty(0)
        if len(leftover) and not drop_last:
            yield self._make_batch(leftover, {k: torch.cat(v) for k, v in carry_arrays.items()})
