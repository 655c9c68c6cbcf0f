"""Hyper-parameters: published defaults, named presets and `--set key=value` overrides."""

from __future__ import annotations

from typing import Any, Mapping

from cmhbench.errors import CmhbenchError
from cmhbench.specs import MethodSpec
from cmhbench.suggest import unknown_name_message

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def parse_assignment(text: str, option: str = "--set") -> tuple[str, str]:
    """'key=value' -> (key, value); anything else is an error naming the option."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key or not value.strip():
        raise CmhbenchError(f"{option} {text!r}: expected key=value (e.g. {option} gamma=0.5)")
    return key, value.strip()


def coerce(key: str, value: Any, default: Any, method: str) -> Any:
    """The value in the type of the published default, whatever its origin: a string from
    ``--set``, a number or bool from a sweep file or from Python. One run has one canonical form,
    so ``--set gamma=1`` and ``gamma: 1`` in a sweep file give one run_id; a value of the wrong
    kind (``gamma: true``, ``epochs: 2.5``) is refused."""
    if not isinstance(value, str):
        return _coerce_typed(key, value, default, method)
    try:
        if isinstance(default, bool):
            lowered = value.lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
            raise ValueError
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
    except ValueError:
        raise CmhbenchError(
            f"--set {key}={value}: {method} expects {type(default).__name__} for {key} "
            f"(default {default!r})"
        ) from None
    return value


def _coerce_typed(key: str, value: Any, default: Any, method: str) -> Any:
    def refuse() -> CmhbenchError:
        return CmhbenchError(f"hyper-parameter {key}={value!r}: {method} expects {type(default).__name__} for "
                             f"{key} (default {default!r})")

    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        raise refuse()
    if isinstance(value, bool):  # bool is an int in Python: never a number here
        raise refuse()
    if isinstance(default, int):
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise refuse()
    if isinstance(default, float):
        if isinstance(value, (int, float)):
            return float(value)
        raise refuse()
    if isinstance(default, str) and not isinstance(value, str):
        raise refuse()
    return value


def choose_preset(spec: MethodSpec, protocol_preset: str | None, requested: str | None) -> str | None:
    """The preset a run uses: the one asked for; none for "published" (the method's published
    defaults); else the protocol's, where the method defines one under that name."""
    if requested == "published":
        return None
    return requested or (protocol_preset if protocol_preset in spec.presets else None)


def resolve_hparams(spec: MethodSpec, preset: str | None, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """defaults, then the preset, then the overrides; unknown keys and presets are errors."""
    values = dict(spec.defaults)
    if preset:
        if preset not in spec.presets:
            raise CmhbenchError(unknown_name_message(f"{spec.name} preset", preset, spec.presets))
        values.update({key: coerce(key, value, spec.defaults[key], spec.name)
                       for key, value in spec.presets[preset].items()})
    for key, value in overrides.items():
        if key not in spec.defaults:
            raise CmhbenchError(unknown_name_message(f"{spec.name} hyper-parameter", key, spec.defaults)
                                + " (in --set)")
        values[key] = coerce(key, value, spec.defaults[key], spec.name)
    for key, allowed in spec.choices.items():
        if values[key] not in allowed:
            raise CmhbenchError(f"--set {key}={values[key]}: {spec.name} expects one of {', '.join(allowed)} "
                                f"for {key} (default {spec.defaults[key]})")
    return values
