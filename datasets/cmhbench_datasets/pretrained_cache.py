"""The toy's pretrained backbones (toy-cnn, clip-tiny) are trained once per machine and cached,
keyed by every setting that makes them: one function for the key and one for load-or-train."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from cmhbench.fsutil import atomic_path, cache_home
from cmhbench_datasets import toy


def cache_path(folder: str, settings: Mapping[str, Any], architecture_version: str) -> Path:
    """``$CMHBENCH_HOME/FOLDER/toy-pretrained-KEY.pt``, KEY hashing the toy generator's version, the
    architecture's and every pretraining setting."""
    key = json.dumps({"generator": toy.GENERATOR_VERSION, "architecture": architecture_version, **settings},
                     sort_keys=True)
    return cache_home() / folder / f"toy-pretrained-{hashlib.sha256(key.encode()).hexdigest()[:16]}.pt"


def load_or_pretrain(path: Path, pretrain: Callable[[], dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The cached state, or ``pretrain()``'s, written atomically (a damaged cache is trained again,
    as the toy regenerates its own)."""
    if path.exists():
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception:
            pass
    state = pretrain()
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return state
