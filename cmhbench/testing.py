"""A conformance check for method plugins, as scikit-learn's ``check_estimator`` is for estimators.

A plugin's own test calls ``check_method("my-method")`` (or passes its `MethodSpec`). The method runs
through the real harness on tiny toy data, a few times, and every rule below is checked:

* ``runs``: a run trains, encodes and scores without error;
* ``codes``: codes are int8 in {-1, +1}, one row per item and ``bits`` columns, both modalities;
* ``not-collapsed``: the retrieval codes have not collapsed (most items sharing one code);
* ``deterministic``: two runs with one seed give identical codes;
* ``resume``: a run killed after its first checkpoint and resumed gives the uninterrupted run's codes
  (closed-form methods, which write no checkpoints, are exempt);
* ``budget``: the epoch budget (``--epochs``) is what ran: the longest declared stage ran exactly the
  budget and every stage ran what was planned;
* ``state``: ``state_dict()`` loaded into a freshly created method encodes to the same codes;
* ``encode-is-pure``: encoding changes neither the model's state nor, when repeated, the codes.

A broken rule raises `MethodCheckError` naming the rule, what was seen and what to change.
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cmhbench.data.sources import SplitData
from cmhbench.errors import CmhbenchError
from cmhbench.fsutil import isolated_cache_home
from cmhbench.plugins.registry import Registry, get_registry
from cmhbench.runner import RunOutcome, RunRequest, encode_split, run
from cmhbench.specs import MethodSpec

TINY_TOY = {"size": 100}
TINY_PRESET = "tiny"


class MethodCheckError(AssertionError):
    """A conformance rule the method breaks; the message names the rule and the fix."""

    def __init__(self, method: str, rule: str, detail: str):
        super().__init__(f"{method} breaks rule {rule!r}: {detail}")
        self.method, self.rule = method, rule


class _SimulatedKill(BaseException):
    """Raised after a checkpoint, as a killed process would stop there; a BaseException so that a
    method's own ``except Exception`` cannot swallow it."""


def check_method(method: str | MethodSpec, *, bits: int = 8, epochs: int = 2, workdir: str | Path | None = None,
                 registry: Registry | None = None) -> list[str]:
    """Check ``method`` (a registered name, or a spec, registered here for the check) against every
    rule; return the rules checked (``resume`` is left out for closed-form methods). Raises
    `MethodCheckError` at the first broken rule."""
    registry = _with_method(registry or get_registry(), method)
    name = method.name if isinstance(method, MethodSpec) else method
    spec = registry.method(name)
    with contextlib.ExitStack() as stack:
        root = Path(workdir) if workdir else Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="check-")))
        # a method's "tiny" preset, where it has one, is its setting for this 50-item training set
        base = dict(method=name, dataset="toy", bits=bits, seed=0, epochs=epochs, device="cpu",
                    dataset_options=dict(TINY_TOY), quiet=True, preset=TINY_PRESET if TINY_PRESET in spec.presets else None)

        def once(folder: str) -> RunOutcome:
            try:
                with isolated_cache_home(root / folder):
                    outcome = run(RunRequest(**base, results_dir=root / folder, force=True), registry)
            except CmhbenchError as exc:
                raise MethodCheckError(name, "runs", f"the run failed: {exc}") from None
            if outcome.trained is None:
                raise MethodCheckError(name, "runs", "the run produced no codes (produces_codes is False)")
            return outcome

        first = once("first")
        _check_codes(name, first, bits)
        checked = ["runs", "codes"]

        second = once("second")
        _same_codes(name, "deterministic", first, second,
                    "seed every random draw from ctx.generator (or the torch/numpy generators the harness "
                    "seeds) and avoid non-deterministic kernels")
        checked.append("deterministic")

        _check_budget(name, first.result, epochs, spec)
        checked.append("budget")

        if spec.stages != {}:
            _check_resume(name, first, root / "resumed", base, registry)
            checked.append("resume")

        _check_state_round_trip(name, spec, first)
        checked.append("state")
        _check_encode_is_pure(name, first)
        checked.append("encode-is-pure")
        _check_not_collapsed(name, first)
        checked.append("not-collapsed")
    return checked


def _check_resume(name: str, first: RunOutcome, folder: Path, base: dict[str, Any], registry: Registry) -> None:
    """A run killed after its first checkpoint and run again resumes and gives ``first``'s codes."""
    with isolated_cache_home(folder), _killed_after_first_checkpoint():
        try:
            run(RunRequest(**base, results_dir=folder, force=True), registry)
        except _SimulatedKill:
            pass
        else:
            raise MethodCheckError(name, "resume", "the run wrote no checkpoint: loop over "
                                   "ctx.epochs(...), which checkpoints after every epoch")
    with isolated_cache_home(folder):
        resumed = run(RunRequest(**base, results_dir=folder), registry)
    if resumed.trained is None or not resumed.result["training"].get("resumed_from"):
        raise MethodCheckError(name, "resume", "the rerun did not resume from the checkpoint")
    _same_codes(name, "resume", first, resumed,
                "state_dict() must hold everything training reads (weights, optimiser state, buffers, "
                "per-item matrices), and load_state_dict() must restore all of it")


def _with_method(registry: Registry, method: str | MethodSpec) -> Registry:
    if not isinstance(method, MethodSpec) or registry.specs["method"].get(method.name) is method:
        return registry
    if method.name in registry.specs["method"]:
        raise CmhbenchError(f"a different method named {method.name!r} is registered already")
    copy = dataclasses.replace(registry, specs={kind: dict(specs) for kind, specs in registry.specs.items()},
                               origins=dict(registry.origins))
    copy.add("method", method, "check_method")
    return copy


def _check_codes(name: str, outcome: RunOutcome, bits: int) -> None:
    dataset = outcome.trained.dataset
    for split, by_modality in outcome.trained.codes.items():
        for modality, codes in by_modality.items():
            expected = (len(dataset.splits[split]), bits)
            if codes.dtype != np.int8 or codes.shape != expected or not np.isin(codes, (-1, 1)).all():
                raise MethodCheckError(name, "codes", f"{split} {modality} codes are {codes.dtype} {codes.shape}; "
                                       f"expected int8 {expected} in {{-1, +1}} (use cmhbench.method.to_codes)")


def _check_not_collapsed(name: str, outcome: RunOutcome) -> None:
    """On the retrieval split (90 items; the 10 queries are too few for the share to mean much)."""
    for modality, stats in outcome.result["codes"]["retrieval"].items():
        if isinstance(stats, dict) and stats.get("collapsed"):
            raise MethodCheckError(name, "not-collapsed", f"retrieval {modality} codes collapsed: "
                                   f"{stats['top_code_share']:.0%} of the items share one code ({stats['distinct']} "
                                   "distinct); a method that learns nothing must not pass")


def _same_codes(name: str, rule: str, a: RunOutcome, b: RunOutcome, fix: str) -> None:
    for split in a.trained.codes:
        for modality in a.trained.codes[split]:
            x, y = a.trained.codes[split][modality], b.trained.codes[split][modality]
            if not np.array_equal(x, y):
                share = float((x != y).mean())
                raise MethodCheckError(name, rule, f"{split} {modality} codes differ in {share:.1%} of bits; {fix}")


def _check_budget(name: str, result: dict[str, Any], epochs: int, spec: MethodSpec) -> None:
    stages = result["training"].get("epochs") or {}
    for stage, record in stages.items():
        if record["run"] != record["planned"]:
            raise MethodCheckError(name, "budget", f"stage {stage!r} ran {record['run']} of {record['planned']} "
                                   "planned epochs")
    if spec.stages == {}:
        return
    if not stages:
        raise MethodCheckError(name, "budget", "no epochs were recorded: loop over ctx.epochs(stage)")
    longest = max(record["planned"] for record in stages.values())
    if longest != epochs:
        raise MethodCheckError(name, "budget", f"--epochs {epochs} gave {longest} epochs to the longest stage: pass "
                               "the stage name to ctx.epochs(stage); the harness applies the budget")


def _query_codes(method, dataset, ctx) -> dict[str, np.ndarray]:
    return encode_split(method, SplitData(dataset, "query", method.device), ctx)


def _state_copy(state: Any) -> Any:
    return torch.utils._pytree.tree_map(lambda v: v.detach().clone() if isinstance(v, torch.Tensor) else v, state)


def _check_state_round_trip(name: str, spec: MethodSpec, outcome: RunOutcome) -> None:
    trained = outcome.trained
    torch.manual_seed(12345)  # the fresh method's own initialisation must not matter
    fresh = spec.create(trained.method.setup)
    fresh.load_state_dict(_state_copy(trained.method.state_dict()))
    got = _query_codes(fresh, trained.dataset, trained.ctx)
    for modality, codes in got.items():
        if not np.array_equal(codes, trained.codes["query"][modality]):
            raise MethodCheckError(name, "state", f"a fresh method loaded with state_dict() encodes {modality} "
                                   f"differently ({float((codes != trained.codes['query'][modality]).mean()):.1%} of "
                                   "bits): state_dict() must hold every trained parameter and input statistic")


def _flat_tensors(state: Any) -> list[torch.Tensor]:
    leaves, _ = torch.utils._pytree.tree_flatten(state)
    return [leaf.detach().cpu().clone() for leaf in leaves if isinstance(leaf, torch.Tensor)]


def _check_encode_is_pure(name: str, outcome: RunOutcome) -> None:
    trained = outcome.trained
    before = _flat_tensors(trained.method.state_dict())
    again = _query_codes(trained.method, trained.dataset, trained.ctx)
    after = _flat_tensors(trained.method.state_dict())
    if len(before) != len(after) or any(not torch.equal(a, b) for a, b in zip(before, after, strict=True)):
        raise MethodCheckError(name, "encode-is-pure", "encoding changed the method's state: encode_* must not "
                               "train, update statistics (use eval mode for batch norm) or write buffers")
    for modality, codes in again.items():
        if not np.array_equal(codes, trained.codes["query"][modality]):
            raise MethodCheckError(name, "encode-is-pure", f"encoding the same {modality} twice gave different codes")




@contextlib.contextmanager
def _killed_after_first_checkpoint() -> Iterator[None]:
    from cmhbench.train.session import TrainingSession

    original = TrainingSession.save_checkpoint

    def save_then_die(self):
        original(self)
        raise _SimulatedKill()

    TrainingSession.save_checkpoint = save_then_die
    try:
        yield
    finally:
        TrainingSession.save_checkpoint = original
