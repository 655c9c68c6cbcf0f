"""The encoder interface."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from cmhbench.errors import CmhbenchError


class Encoder(nn.Module):
    """Maps a batch of raw inputs, as stored on the device, to float feature vectors.

    ``out_dim`` is the feature width. Image encoders take uint8 N×H×W×3 pixels and normalise them
    themselves, on the device; feature encoders take float N×D.
    """

    out_dim: int
    #: True for an encoder that passes feature vectors through (``identity``): a method then sees
    #: that modality in ``MethodSetup.features_in`` and builds its feature-input network
    takes_features: bool = False

    def forward(self, raw: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError


def load_state_file(module: torch.nn.Module, weights: str, name: str, accepted: str) -> torch.nn.Module:
    """Load a local state-dict file (optionally wrapped as {"state_dict": ...}) into ``module``;
    a missing or mismatched file is one error naming the file, the encoder and what ``--image-weights``
    accepts (``accepted``, e.g. "'none', 'imagenet'")."""
    path = Path(weights).expanduser()
    if path.is_dir():
        raise CmhbenchError(f"image weights {path} is a folder; expected {accepted} or a state-dict file for {name}")
    if not path.is_file():
        raise CmhbenchError(f"image weights file {path} does not exist; expected {accepted} or a path to a "
                            f"state-dict file for {name}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CmhbenchError(f"{path} is not a state dict for {name} ({_load_failure(exc)})") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise CmhbenchError(f"{path} is not a state dict for {name}: it holds a {type(state).__name__}, expected a "
                            "dict of tensors")
    try:
        module.load_state_dict(state)
    except Exception as exc:
        raise CmhbenchError(f"{path} is not a state dict for {name}: {_mismatch(module, state, exc)}") from None
    return module


def _mismatch(module: torch.nn.Module, state: dict, exc: Exception) -> str:
    """Why ``state`` did not load, in one line: missing and unexpected keys counted, with the first
    few names (torch lists every one, on several lines, and a backbone has hundreds); otherwise
    torch's message joined into one line. The module is left part-loaded: the caller discards it."""
    try:  # torch's own key matching (it forgives what old files lack, e.g. num_batches_tracked)
        incompatible = module.load_state_dict(state, strict=False)
    except Exception:  # a size mismatch: torch's message says which tensor
        return f"{type(exc).__name__}: {_one_line(exc)}"
    parts = []
    for what, keys in (("missing", sorted(incompatible.missing_keys)), ("unexpected", sorted(incompatible.unexpected_keys))):
        if keys:
            shown = ", ".join(keys[:3]) + (", ..." if len(keys) > 3 else "")
            parts.append(f"{len(keys)} {what} key{'s' if len(keys) != 1 else ''} ({shown})")
    return "; ".join(parts) or f"{type(exc).__name__}: {_one_line(exc)}"


def _load_failure(exc: Exception) -> str:
    """torch.load's reason in one line. Its weights-only refusal spans several lines (their wording
    changes between torch versions) and suggests weights_only=False, which cmhbench never uses (a
    pickle can run any code): only the reason is kept."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines or not lines[0].startswith("Weights only load failed"):
        return f"{type(exc).__name__}: {lines[0] if lines else ''}"
    reasons = []
    for line in lines[1:]:
        line = line.split("WeightsUnpickler error:", 1)[-1].strip()
        if line and not line.startswith(("(1)", "(2)", "In PyTorch", "Check the documentation", "Please file")):
            reasons.append(line.split(". ")[0][:200])
    return "not a plain file of tensors, and weights are loaded without running code" + (
        f": {reasons[0]}" if reasons else "")


def _one_line(exc: Exception, limit: int = 300) -> str:
    """torch's multi-line message (e.g. a size mismatch per tensor) joined into one line, shortened."""
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def check_pixels(raw: torch.Tensor) -> None:
    """Image encoders take uint8 N×H×W×3 pixels; each refuses anything else with this one message."""
    if raw.dtype != torch.uint8 or raw.dim() != 4 or raw.shape[-1] != 3:
        raise CmhbenchError(
            f"image backbones take uint8 N×H×W×3 pixels, got {raw.dtype} {tuple(raw.shape)}; "
            "use --image-encoder identity for feature datasets"
        )
