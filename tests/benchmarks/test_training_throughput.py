"""Each deep method's training throughput (train-split items/s) against its bare backbone's
forward/backward at the same batch size, on the CPU, measured in one run, with the backbone's share
of the method's FLOPs (cmhbench/throughput.py says what each counts). The toy at 32 px, toy-cnn for
the pixel-input methods, clip-tiny's two towers for the CLIP methods; fp32.

    pytest tests/benchmarks/test_training_throughput.py -m perf -p no:cacheprovider
"""

from __future__ import annotations

import pytest

from cmhbench.throughput import (CLIP_METHODS, CPU_SCALE, DEEP_METHODS, backbone_flops_per_item, backbone_throughput,
                                 method_flops_per_item, method_throughput)
from tests.benchmarks.conftest import record_rate

pytestmark = pytest.mark.perf


@pytest.mark.parametrize("method", DEEP_METHODS)
def test_training_throughput_against_the_bare_backbone(benchmark, method):
    measured = benchmark.pedantic(method_throughput, args=(method, CPU_SCALE, "cpu", "fp32"), rounds=1, iterations=1)
    bare = backbone_throughput(method, CPU_SCALE, "cpu", "fp32", measured["batch_size"], context=measured["context"])
    flop_share = (backbone_flops_per_item(method, CPU_SCALE, "cpu", measured["context"])
                  / method_flops_per_item(method, CPU_SCALE, "cpu"))
    benchmark.extra_info["flop_share"] = flop_share
    towers = f" + text tower ({measured['context']} tokens)" if method in CLIP_METHODS else ""
    backbone = f"{CPU_SCALE.encoder_for(method)}{towers} forward+backward, batch {measured['batch_size']}"
    record_rate(backbone, bare)
    record_rate(f"{method} training (cpu, fp32; FLOP share {flop_share:.0%})", measured["items_per_second"], backbone)
    assert measured["items_per_second"] > 0 and bare > 0
