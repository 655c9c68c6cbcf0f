"""The epoch budget is the harness's: stages scale in proportion, results record what ran."""

from __future__ import annotations

import pytest
import torch

from cmhbench.errors import CmhbenchError
from cmhbench.runner import check_epochs_run
from cmhbench.specs import Citation, MethodSpec
from cmhbench.train.context import TrainContext


def _ctx(override, schedule):
    return TrainContext(device=torch.device("cpu"), seed=0, epoch_override=override, schedule=schedule)


def test_every_declared_stage_scales_in_proportion():
    """DAPH publishes 80 + 220 epochs; a budget of 22 gives 8 + 22 (hand-computed: 80·22/220 = 8)."""
    ctx = _ctx(22, {"proxies": 80, "hashing": 220})
    assert ctx.planned_epochs(80, "proxies") == 8
    assert ctx.planned_epochs(220, "hashing") == 22
    assert list(ctx.epochs(80, "proxies")) == list(range(8))
    assert list(ctx.epochs(220, "hashing")) == list(range(22))
    assert ctx.epochs_record() == {"proxies": {"planned": 8, "run": 8}, "hashing": {"planned": 22, "run": 22}}


def test_a_short_stage_keeps_at_least_one_epoch():
    ctx = _ctx(1, {"proxies": 80, "hashing": 220})
    assert ctx.planned_epochs(80, "proxies") == 1  # round(80/220) = 0, raised to one


def test_without_a_budget_the_published_schedule_runs():
    ctx = _ctx(None, {"train": 500})
    assert ctx.planned_epochs(500) == 500


def test_a_method_cannot_pass_its_own_epoch_count_for_a_declared_stage():
    ctx = _ctx(10, {"train": 500})
    with pytest.raises(CmhbenchError, match="publishes 500"):
        list(ctx.epochs(3, "train"))


def test_undeclared_methods_get_the_budget_as_their_count():
    """A plugin that declares no schedule and loops ctx.epochs(its own n) still obeys --epochs."""
    ctx = _ctx(4, None)
    assert list(ctx.epochs(50, "train")) == [0, 1, 2, 3]


def test_a_closed_form_stage_is_not_scaled():
    ctx = _ctx(10, {})
    assert list(ctx.epochs(1, "solve")) == [0]


def test_a_stage_that_stops_short_is_refused():
    ctx = _ctx(5, {"train": 50})
    for epoch in ctx.epochs(50, "train"):
        if epoch == 2:
            break
    spec = MethodSpec(name="quitter", description="", citation=Citation("t", "v", 2026),
                      create=lambda setup: None, defaults={"epochs": 50}, stages={"train": "epochs"})
    with pytest.raises(CmhbenchError, match="ran 2 of the 5 epochs planned for stage 'train'"):
        check_epochs_run(ctx, spec)


def test_a_stage_must_name_an_epoch_count():
    with pytest.raises(ValueError, match="not a positive epoch count"):
        MethodSpec(name="bad", description="", citation=Citation("t", "v", 2026), create=lambda s: None,
                   defaults={"epochs": "many"}, stages={"train": "epochs"})


def test_resumed_epochs_count_every_segment(tmp_path):
    class Tiny:
        def state_dict(self):
            return {}

        def load_state_dict(self, state):
            pass

    first = TrainContext(device=torch.device("cpu"), seed=0, checkpoint_dir=tmp_path, epoch_override=6,
                         schedule={"train": 60})
    first.bind(Tiny())
    for epoch in first.epochs(60, "train"):
        if epoch == 3:
            break  # the process dies during epoch 4: three epochs are checkpointed
    second = TrainContext(device=torch.device("cpu"), seed=0, checkpoint_dir=tmp_path, epoch_override=6,
                          schedule={"train": 60})
    second.bind(Tiny())
    assert list(second.epochs(60, "train")) == [3, 4, 5]
    assert second.epochs_record() == {"train": {"planned": 6, "run": 6}}


def test_a_diverged_run_writes_no_result():
    from cmhbench.runner import check_losses_finite

    spec = MethodSpec(name="wild", description="", citation=Citation("t", "v", 2026), create=lambda s: None)
    check_losses_finite([{"stage": "train", "epoch": 0, "loss": 0.5}], spec)
    with pytest.raises(CmhbenchError, match="diverged: loss = nan in stage 'train', epoch 2"):
        check_losses_finite([{"stage": "train", "epoch": 0, "loss": 0.5},
                             {"stage": "train", "epoch": 1, "loss": float("nan")}], spec)


def test_an_epoch_that_changed_nothing_writes_no_checkpoint(tmp_path, monkeypatch):
    class Tiny:
        def state_dict(self):
            return {}

        def load_state_dict(self, state):
            pass

    saves = []
    ctx = TrainContext(device=torch.device("cpu"), seed=0, checkpoint_dir=tmp_path, schedule={"train": 4})
    ctx.bind(Tiny())
    monkeypatch.setattr(ctx, "save_checkpoint", lambda: saves.append(dict(ctx.progress_by_stage)))
    for epoch in ctx.epochs(4, "train"):
        if epoch >= 2:
            ctx.epoch_changed_nothing()
    assert saves == [{"train": 1}, {"train": 2}]
    assert ctx.epochs_record() == {"train": {"planned": 4, "run": 4}}
