"""The method API: typed hyper-parameters from a params dataclass, declared state saved and restored
by the base class (devices included), the inputs a method gets named in setup.features_in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pytest
import torch

from cmhbench.encoders.identity import create_identity
from cmhbench.errors import CmhbenchError
from cmhbench.hparams import resolve_hparams
from cmhbench.method import HashingMethod, MethodSetup
from cmhbench.specs import Citation, MethodSpec
from cmhbench.toolkit import InputNormaliser, to_codes


@dataclass(frozen=True)
class Params:
    epochs: int = 3
    lr: float = 0.1
    form: Literal["a", "b"] = "a"


class Tiny(HashingMethod):
    stateful = ("net", "opt", "buffer", "extra", "normalise")

    def __init__(self, setup):
        super().__init__(setup)
        self.net = torch.nn.Linear(setup.text_dim, setup.bits)
        self.opt = torch.optim.SGD(self.net.parameters(), lr=self.hp.lr, momentum=0.9)
        self.buffer = torch.zeros(4, device=setup.device)
        self.extra = {"a": torch.ones(2), "none": None}
        self.normalise = InputNormaliser.for_setup(setup)

    def fit(self, train, ctx):
        pass

    def encode_image(self, images):
        return to_codes(self.net(images))

    def encode_text(self, texts):
        return to_codes(self.net(texts))


def _spec(**changes):
    return MethodSpec(**{"name": "tiny", "description": "", "citation": Citation("t", "v", 2026), "create": Tiny,
                         "params": Params, "stages": {"train": "epochs"}, **changes})


def _setup(spec, overrides=None, text_kind="features"):
    hparams = resolve_hparams(spec, None, overrides or {})
    return MethodSetup(bits=4, hparams=hparams, params=spec.typed(hparams), image_encoder=create_identity("none", 3),
                       text_encoder=create_identity("none", 3), num_train=5, num_labels=2, text_dim=3,
                       image_kind="features", text_kind=text_kind, device=torch.device("cpu"))


def test_params_give_defaults_choices_and_typed_values():
    spec = _spec()
    assert dict(spec.defaults) == {"epochs": 3, "lr": 0.1, "form": "a"}
    assert spec.choices["form"] == ("a", "b")
    method = Tiny(_setup(spec, {"lr": "0.5", "epochs": "7"}))  # strings from --set, coerced once
    assert method.hp == Params(epochs=7, lr=0.5, form="a") and isinstance(method.hp.epochs, int)
    with pytest.raises(CmhbenchError, match="expects one of a, b for form"):
        resolve_hparams(spec, None, {"form": "c"})
    with pytest.raises(ValueError, match="give params or defaults, not both"):
        _spec(defaults={"epochs": 3})


def test_features_in_names_the_feature_modalities():
    assert _setup(_spec()).features_in == {"image", "text"}
    assert _setup(_spec(), text_kind="bow").features_in == {"image"}


def test_declared_state_round_trips_with_optimiser_state_and_buffers():
    spec = _spec()
    trained = Tiny(_setup(spec))
    loss = trained.net(torch.ones(2, 3)).sum()
    loss.backward()
    trained.opt.step()  # momentum buffers exist now
    trained.buffer += 3
    trained.extra["a"] = torch.full((2,), 7.0)
    trained.normalise.shift["text"] = torch.full((3,), 2.0)
    state = trained.state_dict()
    assert set(state) == set(Tiny.stateful)

    fresh = Tiny(_setup(spec))
    fresh.load_state_dict(state)
    assert torch.equal(fresh.net.weight, trained.net.weight)
    assert torch.equal(fresh.opt.state_dict()["state"][0]["momentum_buffer"],
                       trained.opt.state_dict()["state"][0]["momentum_buffer"])
    assert torch.equal(fresh.buffer, torch.full((4,), 3.0))
    assert torch.equal(fresh.extra["a"], torch.full((2,), 7.0)) and fresh.extra["none"] is None
    assert torch.equal(fresh.normalise.shift["text"], torch.full((3,), 2.0))


def test_a_state_missing_an_entry_is_one_clear_error():
    spec = _spec()
    state = Tiny(_setup(spec)).state_dict()
    del state["buffer"]
    with pytest.raises(CmhbenchError, match="the saved state has no 'buffer'"):
        Tiny(_setup(spec)).load_state_dict(state)


def test_a_method_that_declares_no_state_is_refused_at_definition():
    with pytest.raises(TypeError, match="declare `stateful"):
        class Stateless(HashingMethod):  # noqa: F841 - defining it is the test
            def fit(self, train, ctx):
                pass

            def encode_image(self, images):
                return images

            def encode_text(self, texts):
                return texts
