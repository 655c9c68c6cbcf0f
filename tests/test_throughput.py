"""cmhbench/throughput.py's counts: the FLOPs a method's training does per item pass, and the item
passes themselves (the measured rates are the benchmarks' and gpu-check's, not asserted here)."""

from __future__ import annotations

from dataclasses import replace

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from cmhbench.throughput import (FLOP_TOY_SIZE, Scale, _item_passes, _run_on_toy, backbone_flops_per_item,
                                 flop_counter, method_flops_per_item)

TOY = Scale({"size": 200, "image_size": 32, "vocabulary": 160}, "toy-cnn", "clip-tiny", epochs=1)


def test_training_flops_counted_over_fit_equal_the_difference_of_whole_runs():
    """Counting inside fit (one epoch) must agree with a second, independent route: whole runs of
    two epochs and of one, training, encoding and scoring counted, differ by one epoch of training.
    DCMH's epochs do the same arithmetic each time; the toy's 256 training items are whole batches."""
    small = replace(TOY, dataset_options={**TOY.dataset_options, "size": FLOP_TOY_SIZE})
    whole = []
    for epochs in (1, 2):
        with flop_counter() as counter:
            result = _run_on_toy("dcmh", small, "cpu", "fp32", epochs)
        whole.append((counter.get_total_flops(), _item_passes(result)))
    difference = (whole[1][0] - whole[0][0]) / (whole[1][1] - whole[0][1])
    assert method_flops_per_item("dcmh", TOY, "cpu") == difference
    # the method does at least its backbone's forward and backward per item, and more (its text net)
    assert backbone_flops_per_item("dcmh", TOY, "cpu") < difference


def test_epochs_that_changed_nothing_are_not_item_passes():
    """SSAH stretches its rate decay over the budget: with 2 epochs the second finds every rate
    frozen and trains nothing, and counting it would double SSAH's measured rate."""
    result = _run_on_toy("ssah", TOY, "cpu", "fp32", 2)
    assert result["training"]["epochs"]["train"] == {"planned": 2, "run": 2, "idle": 1}
    assert _item_passes(result) == result["dataset"]["split_sizes"]["train"]


def test_checkpoint_time_is_recorded_inside_the_training_time():
    """Throughput takes the per-epoch checkpoints out of the training time; the run records them."""
    timings = _run_on_toy("dcmh", TOY, "cpu", "fp32", 2)["timings"]
    assert 0 < timings["checkpoint_seconds"] < timings["train_seconds"]


def test_attention_on_the_cpu_is_counted_as_torch_counts_it_elsewhere():
    """torch's counter sees nothing in the CPU's fused attention kernel; ours counts its forward as the
    two batched products of the unfused path (hand-computed: 2·(B·H·Lq·Lk·E) each) and its backward
    by torch's formula for the GPU's fused kernels."""
    query = torch.randn(2, 4, 10, 16, requires_grad=True)
    key, value = torch.randn(2, 4, 12, 16, requires_grad=True), torch.randn(2, 4, 12, 16, requires_grad=True)

    def counted(counter, backend):
        with sdpa_kernel(backend), counter:
            out = torch.nn.functional.scaled_dot_product_attention(query, key, value)
        forward = counter.get_total_flops()
        with sdpa_kernel(backend), counter:  # entering it again starts the count from zero
            out.sum().backward()
        return forward, counter.get_total_flops()

    forward, backward = counted(flop_counter(), SDPBackend.FLASH_ATTENTION)
    assert forward == 2 * (2 * 2 * 4 * 10 * 12 * 16)
    assert counted(FlopCounterMode(display=False), SDPBackend.MATH)[0] == forward
    assert counted(FlopCounterMode(display=False), SDPBackend.FLASH_ATTENTION) == (0, 0)  # what torch alone sees
    assert backward == torch.utils.flop_counter.sdpa_backward_flop_count(query.shape, query.shape, key.shape,
                                                                         value.shape)


def test_every_throughput_run_trains_what_a_first_run_trains():
    """DAPH caches its stage-1 proxies across runs; a throughput run must not reuse them, or its
    rate (and FLOP count) would be stage 2's alone, and a second measurement not the first's."""
    for _ in range(2):
        epochs = _run_on_toy("daph", TOY, "cpu", "fp32", 1)["training"]["epochs"]
        assert epochs["proxies"]["run"] >= 1 and epochs["hashing"]["run"] >= 1
