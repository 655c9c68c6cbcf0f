"""Training throughput: a deep method's train-split items/s against its bare backbone's
forward/backward at the same batch size, on one device and precision.

The method runs through the runner on the toy (its images at the size asked for), so everything a
real run does counts: feeding batches, the text network, the hash heads, the losses, the optimiser,
any extra pass a method makes over the training set, and host synchronisation. Its rate is the
training set's size times the epochs it ran (all stages) over the training time: training-set
items per second, however many times a method touches each item in an epoch. The bare backbone is
the image encoder (and, for a CLIP method, the text tower too) doing one forward and backward per
item on random inputs already on the device, with no optimiser step: the ceiling a method's
training can approach.

Used by ``tests/benchmarks/test_training_throughput.py`` (CPU) and ``benchmarks/gpu-check`` (GPU).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from typing import Any

import torch

from cmhbench.plugins.registry import get_registry
from cmhbench.runner import RunRequest, run

#: the deep methods whose throughput is measured; the CLIP ones fine-tune both of CLIP's towers
DEEP_METHODS = ("dcmh", "ssah", "daph", "dchmt", "mith", "dsph")
CLIP_METHODS = {"dchmt", "mith", "dsph"}
CLIP_CONTEXT = 77  # tokens per caption, CLIP's context length


@dataclass(frozen=True)
class Scale:
    """The toy's size and image side, the encoders for pixel-input and CLIP methods, and their weights."""

    dataset_options: dict[str, int]
    cnn_encoder: str
    clip_encoder: str
    weights: str = "none"
    epochs: int = 2
    #: the hyper-parameter preset (None: the toy protocol's quick one; "published": the paper's batches)
    preset: str | None = None

    def encoder_for(self, method: str) -> str:
        return self.clip_encoder if method in CLIP_METHODS else self.cnn_encoder


#: what `tests/benchmarks` measures on a CPU in minutes
CPU_SCALE = Scale({"size": 400, "image_size": 32, "vocabulary": 400}, "toy-cnn", "clip-tiny", epochs=2)
#: MIRFLICKR-scale inputs for a GPU: 224-px images, CNN-F and CLIP ViT-B/32 at their real sizes
#: (random weights: a step costs the same), the toy's 1,386-word vocabulary as MIRFLICKR's BoW
GPU_SCALE = Scale({"size": 4000, "image_size": 224, "vocabulary": 1386}, "cnnf", "clip-vit-b32", epochs=2,
                  preset="published")


def method_throughput(method: str, scale: Scale, device: str, precision: str) -> dict[str, Any]:
    """One short run of ``method``: training-set items per second of training, batch size, peak
    device memory."""
    with tempfile.TemporaryDirectory() as scratch:
        outcome = run(RunRequest(method=method, dataset="toy", bits=64, seed=0, epochs=scale.epochs, device=device,
                                 precision=precision, dataset_options=scale.dataset_options,
                                 image_encoder=scale.encoder_for(method), image_weights=scale.weights,
                                 preset=scale.preset, results_dir=scratch, quiet=True, force=True))
    result = outcome.result
    passes = sum(stage["run"] for stage in result["training"]["epochs"].values())
    items = result["dataset"]["split_sizes"]["train"] * passes
    hparams = result["method"]["hyperparameters"]
    return {"items_per_second": items / result["timings"]["train_seconds"], "batch_size": int(hparams["batch_size"]),
            # the caption tokens the CLIP methods' text tower reads (their releases cut at max_words)
            "context": int(hparams.get("max_words", CLIP_CONTEXT)), "peak_memory": result.get("peak_memory")}


def backbone_throughput(method: str, scale: Scale, device: str, precision: str, batch_size: int,
                        steps: int = 10, warmup: int = 2, context: int = CLIP_CONTEXT) -> float:
    """Items/s of the bare backbone's forward and backward at ``batch_size`` (random inputs on the
    device; the CLIP methods' text tower included, on captions of ``context`` tokens, as the method
    reads them)."""
    registry = get_registry()
    device_ = torch.device(device)
    encoder_name = scale.encoder_for(method)
    image_encoder = registry.encoder(encoder_name).create(scale.weights, None).to(device_).train()
    side = scale.dataset_options["image_size"]
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (batch_size, side, side, 3), dtype=torch.uint8, generator=generator).to(device_)
    modules = [(image_encoder, images)]
    if method in CLIP_METHODS:
        text_encoder = registry.encoder(f"{encoder_name}-text").create(scale.weights, None).to(device_).train()
        tokens = torch.randint(1, 49_000, (batch_size, context), generator=generator)
        tokens[:, -1] = 49_407  # the end-of-text token (the highest id) that the tower reads out
        modules.append((text_encoder, tokens.to(device_)))

    def step() -> None:
        for module, inputs in modules:
            with torch.autocast(device_.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
                output = module(inputs)
            output.float().sum().backward()
            module.zero_grad(set_to_none=True)

    for _ in range(warmup):
        step()
    _synchronise(device_)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    _synchronise(device_)
    return steps * batch_size / (time.perf_counter() - started)


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def throughput_row(method: str, scale: Scale, device: str, precision: str) -> dict[str, Any]:
    """The method's rate, its backbone's at the same batch, and the ratio."""
    measured = method_throughput(method, scale, device, precision)
    bare = backbone_throughput(method, scale, device, precision, measured["batch_size"], context=measured["context"])
    return {"method": method, "precision": precision, "encoder": scale.encoder_for(method), **measured,
            "backbone_items_per_second": bare, "ratio": measured["items_per_second"] / bare}
