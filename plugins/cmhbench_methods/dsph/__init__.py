"""DSPH (Huo et al., IEEE TCSVT 2023): the spec and published hyper-parameters, torch-free; the method
is in ``model.py``, its loss in ``losses.py``, the audit against QinLab-WFU/DSPH in docs/methods/dsph.md."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

from cmhbench.errors import CmhbenchError
from cmhbench.specs import Citation, MethodSpec, lazy


@dataclass(frozen=True)
class DSPHParams:
    """utils/get_args.py's defaults (QinLab-WFU/DSPH)."""

    epochs: int = 100
    batch_size: int = 64
    #: rates of the hash heads and of CLIP (BertAdam, warm-up then cosine over the run), as DCHMT's
    lr: float = 1e-3
    clip_lr: float = 1e-5
    weight_decay: float = 0.2
    warmup_proportion: float = 0.1
    #: caption tokens read (start and end tokens included)
    max_words: int = 32
    #: weight of the irrelevant terms (pairs of multi-label items sharing no label)
    alpha: float = 0.8
    #: the margin δ of the negative terms; None: the release's code table for (bits, classes)
    delta: float | None = None
    #: the proxies' own optimiser (SGD with momentum, constant rate)
    proxy_lr: float = 0.02
    proxy_momentum: float = 0.9
    proxy_weight_decay: float = 5e-4
    #: the heads' initialisation: torch's default (the release) or kaiming fan-out (the repackaged
    #: QinLab-WFU/CLIP-based-Cross-Modal-Hashing version)
    head_init: Literal["default", "kaiming"] = "default"


PRESETS = {
    # the README's MS-COCO command
    "coco": {"batch_size": 128},
    # the toy: its tiny CLIP is pretrained only briefly on toy pairs, so CLIP trains at the heads' rate (as DCHMT's)
    "quick": {"clip_lr": 1e-3},
    # the conformance check's 50 items in batches of 16
    "tiny": {"batch_size": 16},
}


@cache
def _margin_table() -> dict[str, list[int]]:
    text = resources.files("cmhbench_methods.dsph").joinpath("margins.json").read_text()
    return json.loads(text)["numerators"]


def code_table_margin(bits: int, num_classes: int) -> float:
    """δ as the release looks it up: row ``bits``, column ⌈log₂ classes⌉ of its code table, the
    largest cosine between two codes when 2^column codes of ``bits`` bits are spread as far apart
    as is known (stored as numerators over ``bits``, margins.json)."""
    column = math.ceil(math.log2(num_classes)) if num_classes > 1 else 0
    row = _margin_table().get(str(bits))
    if row is None or not 1 <= column <= len(row):
        raise CmhbenchError(f"dsph: the release's code table has no margin for {bits} bits and {num_classes} classes "
                            f"(it covers 1-256 bits and up to 2^min(bits, 12) classes); give one with --set delta=VALUE")
    return row[column - 1] / bits


SPEC = MethodSpec(
    name="dsph",
    description="Deep Semantic-aware Proxy Hashing: CLIP fine-tuned with label proxies shared by both modalities",
    citation=Citation("Deep Semantic-Aware Proxy Hashing for Multi-Label Cross-Modal Retrieval", "IEEE TCSVT", 2023,
                      "Huo, Qin, et al.",
                      url="https://doi.org/10.1109/TCSVT.2023.3285266"),
    code_url="https://github.com/QinLab-WFU/DSPH",
    create=lazy("cmhbench_methods.dsph.model:DSPH"),
    params=DSPHParams,
    presets=PRESETS,
    image_encoder="clip-vit-b32",
    text_encoder="clip-vit-b32-text",
    stages={"train": "epochs"},
    cuda_precision="fp32",  # the release trains in fp32 (model.float(), no autocast)
)
