"""The epoch budget is the harness's: stages scale in proportion, results record what ran."""

from __future__ import annotations

import pytest
import torch

from cmhbench.errors import CmhbenchError
from cmhbench.runner import check_epochs_run
from cmhbench.specs import Citation, MethodSpec
from cmhbench.train.session import TrainingSession


def _session(override, schedule):
    return TrainingSession(device=torch.device("cpu"), seed=0, epoch_override=override, schedule=schedule)


def test_every_declared_stage_scales_in_proportion():
    """DAPH publishes 80 + 220 epochs; a budget of 22 gives 8 + 22 (hand-computed: 80·22/220 = 8)."""
    session = _session(22, {"proxies": 80, "hashing": 220})
    ctx = session.ctx
    assert ctx.planned_epochs("proxies") == 8
    assert ctx.planned_epochs("hashing") == 22
    assert list(ctx.epochs("proxies")) == list(range(8))
    assert list(ctx.epochs("hashing")) == list(range(22))
    assert session.epochs_record() == {"proxies": {"planned": 8, "run": 8}, "hashing": {"planned": 22, "run": 22}}


def test_a_short_stage_keeps_at_least_one_epoch():
    ctx = _session(1, {"proxies": 80, "hashing": 220}).ctx
    assert ctx.planned_epochs("proxies") == 1  # round(80/220) = 0, raised to one


def test_without_a_budget_the_published_schedule_runs():
    ctx = _session(None, {"train": 500}).ctx
    assert ctx.planned_epochs("train") == 500


def test_a_method_cannot_pass_its_own_epoch_count_for_a_declared_stage():
    ctx = _session(10, {"train": 500}).ctx
    with pytest.raises(CmhbenchError, match="publishes 500"):
        list(ctx.epochs("train", published=3))


def test_the_stage_is_named_not_counted():
    """The published count comes from the spec: the old ctx.epochs(500, ...) call is one clear error."""
    ctx = _session(10, {"train": 500}).ctx
    for old in (lambda: ctx.epochs(500), lambda: ctx.epochs(500, stage="train"), lambda: ctx.epochs(500, "train"),
                lambda: ctx.planned_epochs(500, "train")):
        with pytest.raises(CmhbenchError, match=r"pass the stage's name, ctx\.(planned_)?epochs\('train'\)"):
            old()  # refused at the call, before any epoch
    with pytest.raises(CmhbenchError, match="stage 'warmup' is not in the method's MethodSpec.stages"):
        list(ctx.epochs("warmup"))


def test_undeclared_methods_get_the_budget_as_their_count():
    """A plugin that declares no schedule and loops ctx.epochs(stage, published=n) still obeys --epochs."""
    ctx = _session(4, None).ctx
    assert list(ctx.epochs("train", published=50)) == [0, 1, 2, 3]


def test_a_closed_form_stage_is_not_scaled():
    ctx = _session(10, {}).ctx
    assert list(ctx.epochs("solve", published=1)) == [0]


def test_a_stage_that_stops_short_is_refused():
    session = _session(5, {"train": 50})
    for epoch in session.ctx.epochs("train"):
        if epoch == 2:
            break
    spec = MethodSpec(name="quitter", description="", citation=Citation("t", "v", 2026),
                      create=lambda setup: None, defaults={"epochs": 50}, stages={"train": "epochs"})
    with pytest.raises(CmhbenchError, match="ran 2 of the 5 epochs planned for stage 'train'"):
        check_epochs_run(session, spec)


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

    first = TrainingSession(device=torch.device("cpu"), seed=0, checkpoint_dir=tmp_path, epoch_override=6,
                            schedule={"train": 60})
    first.bind(Tiny())
    for epoch in first.ctx.epochs("train"):
        if epoch == 3:
            break  # the process dies during epoch 4: three epochs are checkpointed
    second = TrainingSession(device=torch.device("cpu"), seed=0, checkpoint_dir=tmp_path, epoch_override=6,
                             schedule={"train": 60})
    second.bind(Tiny())
    assert list(second.ctx.epochs("train")) == [3, 4, 5]
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
    session = TrainingSession(device=torch.device("cpu"), seed=0, checkpoint_dir=tmp_path, schedule={"train": 4})
    session.bind(Tiny())
    monkeypatch.setattr(session, "save_checkpoint", lambda: saves.append(dict(session.progress_by_stage)))
    for epoch in session.ctx.epochs("train"):
        if epoch >= 2:
            session.ctx.epoch_changed_nothing()
    assert saves == [{"train": 1}, {"train": 2}]
    assert session.epochs_record() == {"train": {"planned": 4, "run": 4, "idle": 2}}


def test_idle_epochs_are_counted_across_a_resume(tmp_path):
    """The record says how many epochs run changed nothing (throughput counts only the others),
    also when the run was interrupted and resumed from a checkpoint in between."""
    class Tiny:
        def state_dict(self):
            return {}

        def load_state_dict(self, state):
            pass

    first = TrainingSession(device=torch.device("cpu"), seed=0, checkpoint_dir=tmp_path, schedule={"train": 5})
    first.bind(Tiny())
    for epoch in first.ctx.epochs("train"):
        if epoch == 3:
            break  # killed during epoch 3: epochs 0-2 are in the checkpoint, epoch 1 idle, 2 saved after it
        if epoch == 1:
            first.ctx.epoch_changed_nothing()
    resumed = TrainingSession(device=torch.device("cpu"), seed=0, checkpoint_dir=tmp_path, schedule={"train": 5})
    resumed.bind(Tiny())
    for epoch in resumed.ctx.epochs("train"):
        assert epoch >= 3
        if epoch == 4:
            resumed.ctx.epoch_changed_nothing()
    assert resumed.epochs_record() == {"train": {"planned": 5, "run": 5, "idle": 2}}
