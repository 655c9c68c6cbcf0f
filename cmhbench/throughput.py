"""Training throughput: a deep method's train-split items/s against its bare backbone's
forward/backward at the same batch size, on one device and precision.

The method runs through the runner on the toy (its images at the size asked for), so everything a
real run does counts: feeding batches, the text network, the hash heads, the losses, the optimiser,
any extra pass a method makes over the training set, and host synchronisation; not the harness's
per-epoch checkpoints, whose time the row gives apart. Its rate is the training set's size times the
epochs it trained (all stages) over the training time: training-set items per second, however many
times a method touches each item in an epoch. The bare backbone is
the image encoder (and, for a CLIP method, the text tower too) doing one forward and backward per
item on random inputs already on the device, with no optimiser step: the ceiling a method's
training can approach.

Part of the gap is arithmetic the method adds on purpose (MITH's token transformers, SSAH's LabNet
and discriminators): ``flop_share`` is the backbone's share of a training pass's matmul, convolution
and attention FLOPs (`flop_counter`): a method whose FLOPs all ran at the backbone's rate would reach
a ratio of exactly flop_share, so what is left below it is overhead (data movement, per-item Python,
syncs).

Used by ``tests/benchmarks/test_training_throughput.py`` (CPU) and ``benchmarks/gpu-check`` (GPU).
"""

from __future__ import annotations

import gc
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable
from unittest import mock

import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

from cmhbench.fsutil import isolated_cache_home
from cmhbench.plugins.registry import get_registry
from cmhbench import runner
from cmhbench.runner import RunRequest, run, train_method

#: the deep methods whose throughput is measured; the CLIP ones fine-tune both of CLIP's towers
DEEP_METHODS = ("dcmh", "ssah", "daph", "dchmt", "mith", "dsph")
CLIP_METHODS = {"dchmt", "mith", "dsph"}
CLIP_CONTEXT = 77  # tokens per caption, CLIP's context length
#: the toy FLOPs are counted on: its training split, 256 items, is whole batches of 64 and 128, so that
#: methods which drop a last partial batch (SSAH) train on all of it. A pass's FLOPs per item depend on
#: the split's size only through N×batch similarity terms (DCMH, SSAH): under 0.1 % of a 224-px pass
FLOP_TOY_SIZE = 512


def _cpu_attention_flops(query, key, value, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query, key, value)


def _cpu_attention_backward_flops(grad_out, query, key, value, *args, out_shape=None, **kwargs) -> int:
    return sdpa_backward_flop_count(grad_out, query, key, value)


#: torch counts the GPU's fused attention kernels but not the CPU's: the same formulas for those, so
#: that a FLOP share is the same whichever device counted it
_CPU_ATTENTION = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_attention_flops,
                  torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward: _cpu_attention_backward_flops}


def flop_counter() -> FlopCounterMode:
    """torch's counter of matrix-product, convolution and attention FLOPs, attention on the CPU included."""
    return FlopCounterMode(display=False, custom_mapping=_CPU_ATTENTION)


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


#: what `tests/benchmarks` measures on a CPU in minutes (a training split of 256: whole batches, as below)
CPU_SCALE = Scale({"size": 512, "image_size": 32, "vocabulary": 400}, "toy-cnn", "clip-tiny", epochs=2)
#: MIRFLICKR-scale inputs for a GPU: 224-px images, CNN-F and CLIP ViT-B/32 at their real sizes
#: (random weights: a step costs the same), the toy's 1,386-word vocabulary as MIRFLICKR's BoW
#: (4,096 items: a training split of 2,048, whole batches of 64 and 128 for SSAH, which drops a partial one)
GPU_SCALE = Scale({"size": 4096, "image_size": 224, "vocabulary": 1386}, "cnnf", "clip-vit-b32", epochs=2,
                  preset="published")


def _run_on_toy(method: str, scale: Scale, device: str, precision: str, epochs: int) -> dict[str, Any]:
    """A fresh run: what a method caches across runs (DAPH's proxies) is not reused (the toy is)."""
    with tempfile.TemporaryDirectory() as scratch, isolated_cache_home(Path(scratch)):
        outcome = run(RunRequest(method=method, dataset="toy", bits=64, seed=0, epochs=epochs, device=device,
                                 precision=precision, dataset_options=scale.dataset_options,
                                 image_encoder=scale.encoder_for(method), image_weights=scale.weights,
                                 preset=scale.preset, results_dir=scratch, quiet=True, force=True))
    result = outcome.result
    del outcome
    # the finished method (towers, optimiser state) sits in a reference cycle; free it before the next
    # run so that its memory is not in that run's peak
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return result


def _item_passes(result: dict[str, Any]) -> int:
    """Training-set items handed to the method: the split's size times the epochs of all stages
    that trained (not those that changed nothing, as SSAH's do once its stretched rates freeze)."""
    epochs = result["training"]["epochs"].values()
    items = result["dataset"]["split_sizes"]["train"] * sum(stage["run"] - stage.get("idle", 0) for stage in epochs)
    if not items:
        raise ValueError(f"{result['method']['name']}: every epoch of the run was idle; there is no training to measure")
    return items


def method_throughput(method: str, scale: Scale, device: str, precision: str) -> dict[str, Any]:
    """One short run of ``method``: training-set items per second of training, batch size, peak
    device memory."""
    result = _run_on_toy(method, scale, device, precision, scale.epochs)
    hparams = result["method"]["hyperparameters"]
    timings = result["timings"]
    # the harness's per-epoch checkpoints are not the method's training (on a GPU, copying CLIP and
    # its optimiser state off the device can take as long as an epoch): timed apart
    training = timings["train_seconds"] - timings["checkpoint_seconds"]
    return {"items_per_second": _item_passes(result) / training, "checkpoint_seconds": timings["checkpoint_seconds"],
            "train_seconds": timings["train_seconds"], "batch_size": int(hparams["batch_size"]),
            # the caption tokens the CLIP methods' text tower reads (their releases cut at max_words)
            "context": int(hparams.get("max_words", CLIP_CONTEXT)), "peak_memory": result.get("peak_memory")}


def method_flops_per_item(method: str, scale: Scale, device: str) -> float:
    """The method's training FLOPs per item pass, counted over its fit (one epoch on a small toy;
    encoding and scoring are left out)."""
    counter = flop_counter()

    # the runner has no hook around training (nothing else needs one): the count wraps its call
    def counted_training(*args: Any, **kwargs: Any) -> Any:
        with counter:
            return train_method(*args, **kwargs)

    small = replace(scale, dataset_options={**scale.dataset_options, "size": FLOP_TOY_SIZE})
    with mock.patch.object(runner, "train_method", counted_training):
        result = _run_on_toy(method, small, device, "fp32", epochs=1)
    return counter.get_total_flops() / _item_passes(result)


def _backbone_step(method: str, scale: Scale, device: torch.device, precision: str, batch_size: int,
                   context: int) -> Callable[[], None]:
    registry = get_registry()
    encoder_name = scale.encoder_for(method)
    image_encoder = registry.encoder(encoder_name).create(scale.weights, None).to(device).train()
    side = scale.dataset_options["image_size"]
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (batch_size, side, side, 3), dtype=torch.uint8, generator=generator).to(device)
    modules = [(image_encoder, images)]
    if method in CLIP_METHODS:
        text_encoder = registry.encoder(f"{encoder_name}-text").create(scale.weights, None).to(device).train()
        tokens = torch.randint(1, 49_000, (batch_size, context), generator=generator)
        tokens[:, -1] = 49_407  # the end-of-text token (the highest id) that the tower reads out
        modules.append((text_encoder, tokens.to(device)))

    def step() -> None:
        for module, inputs in modules:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
                output = module(inputs)
            output.float().sum().backward()
            module.zero_grad(set_to_none=True)

    return step


def backbone_throughput(method: str, scale: Scale, device: str, precision: str, batch_size: int,
                        steps: int = 10, warmup: int = 2, context: int = CLIP_CONTEXT) -> float:
    """Items/s of the bare backbone's forward and backward at ``batch_size`` (random inputs on the
    device; the CLIP methods' text tower included, on captions of ``context`` tokens, as the method
    reads them)."""
    device_ = torch.device(device)
    step = _backbone_step(method, scale, device_, precision, batch_size, context)
    for _ in range(warmup):
        step()
    _synchronise(device_)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    _synchronise(device_)
    return steps * batch_size / (time.perf_counter() - started)


def backbone_flops_per_item(method: str, scale: Scale, device: str, context: int = CLIP_CONTEXT) -> float:
    """The bare backbone's forward and backward FLOPs per item."""
    step = _backbone_step(method, scale, torch.device(device), "fp32", 2, context)
    with flop_counter() as counter:
        step()
    return counter.get_total_flops() / 2


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def throughput_row(method: str, scale: Scale, device: str, precision: str, flop_share: float | None = None
                   ) -> dict[str, Any]:
    """The method's rate, its backbone's at the same batch, the ratio, and the backbone's share of
    the method's FLOPs (counted unless given: it does not depend on the precision)."""
    measured = method_throughput(method, scale, device, precision)
    bare = backbone_throughput(method, scale, device, precision, measured["batch_size"], context=measured["context"])
    if flop_share is None:
        flop_share = (backbone_flops_per_item(method, scale, device, measured["context"])
                      / method_flops_per_item(method, scale, device))
    return {"method": method, "precision": precision, "encoder": scale.encoder_for(method), **measured,
            "backbone_items_per_second": bare, "ratio": measured["items_per_second"] / bare,
            "flop_share": flop_share}
