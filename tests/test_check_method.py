"""cmhbench.testing.check_method: every built-in method and the example plugin pass it, and a method
that breaks a rule fails with that rule named."""

from __future__ import annotations

import pytest
import torch

from cmhbench.method import HashingMethod, to_codes
from cmhbench.specs import Citation, MethodSpec
from cmhbench.testing import MethodCheckError, check_method


def _registered_methods() -> list[str]:
    from cmhbench.plugins.registry import get_registry

    return sorted(get_registry().specs["method"])


@pytest.mark.parametrize("name", _registered_methods())
def test_every_registered_method_passes(name, tmp_path):
    """Every method any installed plugin registers (the built-ins and the example), as timm's tests
    run over list_models()."""
    checked = check_method(name, workdir=tmp_path)
    assert {"runs", "codes", "deterministic", "budget", "state", "encode-is-pure"} <= set(checked)


class Linear(HashingMethod):
    """A tiny correct method (a linear map per modality on pooled pixels / texts, trained for a
    few epochs), which the broken variants below each spoil in one way."""

    def __init__(self, setup):
        super().__init__(setup)
        torch.manual_seed(setup.seed)
        self.image = torch.nn.Linear(3 * 4 * 4, setup.bits)
        self.text = torch.nn.Linear(setup.text_dim, setup.bits)
        self.calls = 0

    def _pixels(self, images):
        return torch.nn.functional.adaptive_avg_pool2d(images.permute(0, 3, 1, 2).float() / 255, 4).flatten(1)

    def fit(self, train, ctx):
        for _ in ctx.epochs("train", published=self.hp.epochs):  # serves closed-form specs (stages={}) too
            for _batch in train.batches(50, shuffle=True, generator=ctx.generator):
                with torch.no_grad():
                    self.image.weight += 0.01 * torch.randn(self.image.weight.shape, generator=ctx.generator)
                    self.text.weight += 0.01 * torch.randn(self.text.weight.shape, generator=ctx.generator)

    def encode_image(self, images):
        return to_codes(self.image(self._pixels(images)))

    def encode_text(self, texts):
        return to_codes(self.text(texts.float()))

    def state_dict(self):
        return {"image": self.image.state_dict(), "text": self.text.state_dict()}

    def load_state_dict(self, state):
        self.image.load_state_dict(state["image"])
        self.text.load_state_dict(state["text"])


class Unseeded(Linear):
    def fit(self, train, ctx):
        for _ in ctx.epochs("train", published=self.hp.epochs):  # serves closed-form specs (stages={}) too
            with torch.no_grad():
                self.image.weight += torch.randn(self.image.weight.shape, generator=torch.Generator().manual_seed(
                    torch.seed() % 2**31))


class ForgetsText(Linear):
    def state_dict(self):
        return {"image": self.image.state_dict()}

    def load_state_dict(self, state):
        self.image.load_state_dict(state["image"])


class OwnEpochCount(Linear):
    def fit(self, train, ctx):
        for _ in ctx.epochs("train", published=5):  # not the published count it declared (3)
            pass


class TrainsWhileEncoding(Linear):
    def encode_text(self, texts):
        with torch.no_grad():
            self.text.bias += 1.0
        return super().encode_text(texts)


class OneBitShort(Linear):
    def encode_image(self, images):
        return super().encode_image(images)[:, 1:]


@pytest.mark.parametrize("cls, rule, stages", [
    (Linear, None, {"train": "epochs"}), (Unseeded, "deterministic", {"train": "epochs"}),
    (ForgetsText, "resume", {"train": "epochs"}),  # a resumed run loses the text net's training
    (ForgetsText, "state", {}),  # closed form: no resume, the state round trip catches it
    (TrainsWhileEncoding, "encode-is-pure", {"train": "epochs"}), (OneBitShort, "runs", {"train": "epochs"}),
])
def test_a_broken_rule_is_named(cls, rule, stages, tmp_path):
    spec = MethodSpec(name=f"check-{cls.__name__.lower()}", description="test", citation=Citation("t", "t", 2026),
                      create=cls, defaults={"epochs": 3}, stages=stages, input="direct")
    if rule is None:
        assert "resume" in check_method(spec, workdir=tmp_path)
        return
    with pytest.raises(MethodCheckError) as info:
        check_method(spec, workdir=tmp_path)
    assert info.value.rule == rule, str(info.value)


def test_a_method_that_ignores_the_budget_is_refused(tmp_path):
    spec = MethodSpec(name="check-own-epochs", description="test", citation=Citation("t", "t", 2026),
                      create=OwnEpochCount, defaults={"epochs": 3}, stages={"train": "epochs"}, input="direct")
    with pytest.raises(MethodCheckError, match="rule 'runs'.*publishes 3"):
        check_method(spec, workdir=tmp_path)


def test_a_direct_input_method_builds_no_encoder_and_records_none(tmp_path):
    """input="direct": no backbone is built; the result says "none"."""
    from cmhbench.plugins.registry import get_registry
    from cmhbench.runner import RunRequest, run
    from cmhbench.testing import _with_method

    spec = MethodSpec(name="check-direct", description="test", citation=Citation("t", "t", 2026), create=Linear,
                      defaults={"epochs": 1}, stages={"train": "epochs"}, input="direct")
    outcome = run(RunRequest(method="check-direct", dataset="toy", bits=8, seed=0, device="cpu", quiet=True,
                             dataset_options={"size": 100}, results_dir=tmp_path),
                  _with_method(get_registry(), spec))
    assert outcome.result["encoders"]["image"] == {"name": "none", "weights": "none"}
    assert outcome.trained.method.setup.image_encoder is None


def test_the_built_in_methods_are_among_the_registered():
    assert {"dcmh", "ssah", "daph", "cvh", "scm-orth", "scm-seq", "cmfh"} <= set(_registered_methods())
