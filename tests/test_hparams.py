"""Hyper-parameters have one canonical form, whatever their origin."""

from __future__ import annotations

import pytest

from cmhbench.errors import CmhbenchError
from cmhbench.hparams import resolve_hparams
from cmhbench.plugins.registry import get_registry


def _dcmh(**overrides):
    return resolve_hparams(get_registry().method("dcmh"), None, overrides)


def test_cli_strings_sweep_numbers_and_python_values_agree():
    from_cli = _dcmh(gamma="1", epochs="10", batch_size="64")
    from_sweep = _dcmh(gamma=1, epochs=10.0, batch_size=64)
    assert from_cli == from_sweep
    assert type(from_sweep["gamma"]) is float and type(from_sweep["epochs"]) is int


@pytest.mark.parametrize("key, value", [("gamma", True), ("epochs", 2.5), ("epochs", False), ("gamma", "x"),
                                         ("buffer_init", 3)])
def test_a_value_of_the_wrong_kind_is_refused(key, value):
    with pytest.raises(CmhbenchError, match=f"{key}"):
        _dcmh(**{key: value})


def test_bools_stay_bools():
    spec = get_registry().method("daph")
    assert resolve_hparams(spec, None, {"use_l1": "false"})["use_l1"] is False
    assert resolve_hparams(spec, None, {"use_l1": False})["use_l1"] is False
    with pytest.raises(CmhbenchError, match="use_l1"):
        resolve_hparams(spec, None, {"use_l1": 0})
