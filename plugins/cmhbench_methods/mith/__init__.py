"""MITH (Liu et al., ACM MM 2023): the spec and published hyper-parameters, torch-free; the method is
in ``model.py`` (networks in ``networks.py``, losses in ``losses.py``), the audit against
DarrenZZhang/MM23-MITH in docs/methods/mith.md."""

from dataclasses import dataclass
from typing import Literal

from cmhbench.specs import Citation, MethodSpec, lazy, reported_table


@dataclass(frozen=True)
class MITHParams:
    """utils/get_args.py's defaults and run_MITH.sh (DarrenZZhang/MM23-MITH)."""

    epochs: int = 30
    batch_size: int = 128
    #: rates of the hashing module and of CLIP (BertAdam, warm-up then cosine over the run)
    lr: float = 1e-3
    clip_lr: float = 2e-6
    weight_decay: float = 0.01
    warmup_proportion: float = 0.05
    max_words: int = 32
    #: concepts each token keeps in the localized token aggregation
    top_k_label: int = 8
    transformer_layers: int = 2
    res_mlp_layers: int = 2
    activation: Literal["gelu", "relu"] = "gelu"
    dropout: float = 0.0
    #: loss weights: token likelihood, distillation (μ), InfoNCE (δ), global cross-modal likelihood (β),
    #: quantisation (γ), token-wise within InfoNCE (α); λ mixes global and local codes in the target B
    hyper_tokens_intra: float = 1.0
    hyper_distill: float = 1.0
    hyper_info_nce: float = 50.0
    hyper_cls_inter: float = 10.0
    hyper_quan: float = 8.0
    hyper_alpha: float = 0.01
    hyper_lambda: float = 0.99


PRESETS = {
    # the toy: its tiny CLIP is pretrained only briefly on toy pairs (toy_clip.py), so CLIP trains at
    # the hashing module's rate; measured in docs/methods/mith.md
    "quick": {"clip_lr": 1e-3, "batch_size": 64},
    # the conformance check's 50 items in batches of 16
    "tiny": {"batch_size": 16},
}

# MITH's own rows of its Table 1 (Fig/resultMITH.png in the repository): calc_map_k with k=None over the
# whole ranking (utils/calc_utils.py), the variant "dchmt_map"; the split run_MITH.sh draws with seed 1.
_SOURCE = "MITH (ACM MM 2023), Table 1 (DarrenZZhang/MM23-MITH Fig/resultMITH.png)"
_SETTING = "CLIP ViT-B/32; the release's split (seed 1), as this suite's"
_DEFINITION = "dchmt_map"
REPORTED = (
    reported_table("mirflickr-dchmt", _SOURCE, _SETTING,
                   {"i2t": (0.8464, 0.8645, 0.8718), "t2i": (0.8228, 0.8389, 0.8468)}, definition=_DEFINITION)
    + reported_table("nuswide-dchmt", _SOURCE, _SETTING,
                     {"i2t": (0.7004, 0.7148, 0.7297), "t2i": (0.7140, 0.7276, 0.7401)}, definition=_DEFINITION)
    + reported_table("coco-dchmt", _SOURCE, _SETTING,
                     {"i2t": (0.7039, 0.7359, 0.7664), "t2i": (0.7017, 0.7358, 0.7661)}, definition=_DEFINITION)
)

SPEC = MethodSpec(
    name="mith",
    description="Multi-granularity Interactive Transformer Hashing: global and token-level CLIP codes, distilled",
    citation=Citation("Multi-Granularity Interactive Transformer Hashing for Cross-modal Retrieval", "ACM MM", 2023,
                      "Yishu Liu, Qingpeng Wu, Zheng Zhang, Jingyi Zhang, Guangming Lu",
                      url="https://dl.acm.org/doi/10.1145/3581783.3612411"),
    code_url="https://github.com/DarrenZZhang/MM23-MITH",
    create=lazy("cmhbench_methods.mith.model:MITH"),
    params=MITHParams,
    presets=PRESETS,
    image_encoder="clip-vit-b32",
    text_encoder="clip-vit-b32-text",
    stages={"train": "epochs"},
    cuda_precision="fp32",  # the release trains in fp32 (model.float(), no autocast)
    reported=REPORTED,
)
