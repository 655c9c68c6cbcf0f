"""The peer PyTorch DCMH port's epoch time (WendellGul/DCMH, a copy you fetched; never committed here).

    python benchmarks/peer_dcmh.py PEER_DIR [--device cuda] [--items 20015 --query 2000 --train 10000]

Writes the two files the port reads, at MIRFLICKR-25K's scale by default: ``FLICKR-25K.mat`` (HDF5:
``images`` N×3×224×224 uint8, ``YAll`` N×1,386 tags, ``LAll`` N×24 labels, random) and
``imagenet-vgg-f.mat`` (CNN-F at its real widths, random filters, in the simplenn layout the port's
``ImgModule._init`` indexes: each layer's ``weights`` first, ``normalization.averageImage`` at the
top). Then runs the port's own ``main.train`` for one epoch (``max_epoch=1, valid=False, bit=64``),
unmodified, in a subprocess (its modules are named ``main``, ``config``, ``utils``), and times its two
training passes (image net, then text net: its two ``tqdm`` loops, the device synchronised at
each end). Prints one JSON line: the passes' seconds, the epoch's, and training items per second
counted as cmhbench counts them (training items / epoch time), to set beside our DCMH's
``train_items_per_second`` at the same batch (128) and scale. gpu-check runs it with
``--peer-dcmh PEER_DIR``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

TAGS, CLASSES = 1386, 24
#: CNN-F's convolutions as imagenet-vgg-f.mat holds them: (layer index, kernel, in, out)
CNNF_CONVS = ((0, 11, 3, 64), (4, 5, 64, 256), (8, 3, 256, 256), (10, 3, 256, 256), (12, 3, 256, 256),
              (15, 6, 256, 4096), (17, 1, 4096, 4096), (19, 1, 4096, 1000))
LAYERS = 21  # conv1 ... fc8 and the softmax


def write_flickr(path: Path, items: int, seed: int = 0) -> Path:
    import h5py

    rng = np.random.default_rng(seed)
    labels = (rng.random((items, CLASSES)) < 0.12).astype(np.float64)
    labels[np.arange(items), rng.integers(0, CLASSES, items)] = 1
    with h5py.File(path, "w") as handle:
        images = handle.create_dataset("images", (items, 3, 224, 224), dtype=np.uint8)
        for start in range(0, items, 1024):
            stop = min(start + 1024, items)
            images[start:stop] = rng.integers(0, 256, (stop - start, 3, 224, 224), dtype=np.uint8)
        handle["YAll"] = (rng.random((items, TAGS)) < 0.01).astype(np.float64)
        handle["LAll"] = labels
    return path


def write_vgg_f(path: Path, seed: int = 0) -> Path:
    import scipy.io

    rng = np.random.default_rng(seed)

    def cell(*items) -> np.ndarray:
        array = np.empty(len(items), dtype=object)
        array[:] = list(items)
        return array

    layers = [{"weights": cell(), "name": f"layer{i}", "type": "other"} for i in range(LAYERS)]
    for index, size, cin, cout in CNNF_CONVS:
        filters = (rng.standard_normal((size, size, cin, cout), dtype=np.float32) * np.sqrt(2 / (size * size * cin)))
        layers[index] = {"weights": cell(filters.astype(np.float32), np.zeros((cout, 1), np.float32)),
                         "name": f"conv{index}", "type": "conv"}
    normalization = {"averageImage": rng.uniform(90, 130, (224, 224, 3)).astype(np.float32)}
    scipy.io.savemat(str(path), {"layers": cell(*layers), "normalization": normalization})
    return path


# run inside the subprocess: the port's train() as it is, its tqdm loops timed
_TIMED_TRAIN = """
import json, sys, time
import torch
sys.path.insert(0, {peer!r})
import main as port
use_gpu = {use_gpu!r}
loops = []
real_tqdm = port.tqdm
def timed_tqdm(iterable, *args, **kwargs):
    started = time.perf_counter()
    yield from real_tqdm(iterable, *args, disable=True, **kwargs)
    if use_gpu:
        torch.cuda.synchronize()
    loops.append(time.perf_counter() - started)
port.tqdm = timed_tqdm
port.write_result = lambda result: None
# train() scores the codes at the end even with valid=False, and its calc_map_k indexes CPU labels
# with CUDA ranks (an error in today's torch); the timing is done by then
port.valid = lambda *args, **kwargs: (0.0, 0.0)
port.train(data_path={data!r}, pretrain_model_path={vgg!r}, max_epoch=1, valid=False, use_gpu=use_gpu, bit=64,
           batch_size=128, query_size={query}, training_size={train}, database_size={database})
print("PEER-TIMES " + json.dumps(loops[:2]))
"""


def peer_epoch(peer: Path, device: str = "cuda", items: int = 20015, query: int = 2000, train: int = 10000,
               folder: Path | None = None, timeout: float = 420) -> dict:
    """One epoch of the port's ``train`` on files written in ``folder`` (a temporary one by default)."""
    if not (peer / "main.py").is_file() or not (peer / "models").is_dir():
        raise SystemExit(f"{peer}: not a copy of WendellGul/DCMH (no main.py and models/)")
    with tempfile.TemporaryDirectory(dir=folder) as work:
        work = Path(work)
        data, vgg = write_flickr(work / "FLICKR-25K.mat", items), write_vgg_f(work / "imagenet-vgg-f.mat")
        script = _TIMED_TRAIN.format(peer=str(peer.resolve()), use_gpu=device.startswith("cuda"), data=str(data),
                                     vgg=str(vgg), query=query, train=train, database=items - query)
        try:
            done = subprocess.run([sys.executable, "-c", script], cwd=work, capture_output=True, text=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"the port's train() ran past {timeout} s") from exc
    line = next((line for line in done.stdout.splitlines() if line.startswith("PEER-TIMES ")), None)
    if done.returncode or line is None:
        raise RuntimeError(f"the port's train() failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    image_pass, text_pass = json.loads(line.split(" ", 1)[1])
    steps = train // 128  # the port's passes: num_train // batch_size random batches each
    return {"device": device, "items": items, "train": train, "batch_size": 128, "image_pass_seconds": image_pass,
            "text_pass_seconds": text_pass, "epoch_seconds": image_pass + text_pass,
            "train_items_per_second": steps * 128 / (image_pass + text_pass)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("peer", type=Path, help="a copy of github.com/WendellGul/DCMH")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--items", type=int, default=20015)
    parser.add_argument("--query", type=int, default=2000)
    parser.add_argument("--train", type=int, default=10000)
    args = parser.parse_args()
    print(json.dumps(peer_epoch(args.peer, args.device, args.items, args.query, args.train)))


if __name__ == "__main__":
    main()
