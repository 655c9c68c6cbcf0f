"""BertAdam's step (DCHMT, MITH and DSPH fine-tune CLIP with it): the multi-tensor path a GPU takes
against the per-tensor loop, on the parameter shapes of CLIP ViT-B/32's two towers (301 tensors).

On a GPU a step's cost is dominated by kernel launches, 17 per tensor in the loop. The CPU cannot
show launch cost, so the benchmark measures two things it can: the operators each path dispatches
per step (on a GPU each is a kernel launch, a multi-tensor one a few), and the step's time on one-element tensors of the
same count, where only the per-operator overhead is left. At the real sizes both are timed too: there
the step is memory-bound, and the two paths have measured within this machine's noise of each other
(the CPU keeps the loop, as torch's own Adam does).

    pytest tests/benchmarks/test_optimizer_speed.py -m perf -p no:cacheprovider
"""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from cmhbench.plugins.registry import get_registry
from cmhbench.toolkit.bert_adam import BertAdam
from tests.benchmarks.conftest import record

pytestmark = pytest.mark.perf


class _CountOperators(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.namespace == "aten":  # not the profiler's markers around Optimizer.step
            self.count += 1
        return func(*args, **(kwargs or {}))


def _clip_shapes() -> list[torch.Size]:
    registry = get_registry()
    towers = [registry.encoder(name).create("none", None) for name in ("clip-vit-b32", "clip-vit-b32-text")]
    return [p.shape for tower in towers for p in tower.parameters()]


@pytest.fixture(scope="module")
def clip_shapes() -> list[torch.Size]:
    return _clip_shapes()


def _optimiser(shapes, foreach: bool, one_element: bool) -> BertAdam:
    params = [torch.zeros(1 if one_element else shape, requires_grad=True) for shape in shapes]
    for p in params:
        p.grad = torch.randn_like(p)
    optimiser = BertAdam([{"params": params, "lr": 1e-5}], lr=1e-5, total_steps=1000, foreach=foreach)
    optimiser.step()  # the moments allocated
    return optimiser


@pytest.mark.parametrize("one_element", [True, False], ids=["overhead-only", "vit-b32-sizes"])
@pytest.mark.parametrize("foreach", [False, True], ids=["loop", "multi-tensor"])
def test_bert_adam_step(benchmark, clip_shapes, foreach, one_element):
    optimiser = _optimiser(clip_shapes, foreach, one_element)
    with _CountOperators() as counter:
        optimiser.step()
    benchmark.extra_info["operators_per_step"] = counter.count
    benchmark.pedantic(optimiser.step, rounds=5 if one_element else 2, iterations=1, warmup_rounds=1)
    size = "one-element tensors" if one_element else "ViT-B/32 sizes"
    name = f"BertAdam step, {'multi-tensor' if foreach else 'loop'}, {size} ({counter.count} ops)"
    record(benchmark, name, f"BertAdam step, loop, {size} ({_loop_ops(clip_shapes)} ops)" if foreach else None)


def _loop_ops(shapes) -> int:
    optimiser = _optimiser(shapes, False, True)
    with _CountOperators() as counter:
        optimiser.step()
    return counter.count
