"""DCMH (Jiang & Li, CVPR 2017): the spec and published hyper-parameters, torch-free; the method is
in ``model.py``, its objective in ``losses.py``, the audit against the release in docs/methods/dcmh.md."""

from dataclasses import dataclass
from typing import Literal

from cmhbench.specs import Citation, MethodSpec, lazy, reported_table


@dataclass(frozen=True)
class DCMHParams:
    epochs: int = 500
    batch_size: int = 128
    gamma: float = 1.0
    eta: float = 1.0
    lr_start: float = 10 ** -1.5
    lr_end: float = 1e-3
    weight_decay: float = 5e-4
    hidden: int = 8192
    #: F and G before the first epoch: zeros (the MATLAB release) or N(0, 1) (its TensorFlow port)
    buffer_init: Literal["zeros", "random"] = "zeros"
    #: image features (no CNN): the text net's structure (mlp) or the hash layer alone (linear)
    feature_image_net: Literal["mlp", "linear"] = "mlp"


# Short budgets (toy v2): batches of 16, the published rates; why not larger: docs/methods/dcmh.md
QUICK = {"batch_size": 16}
# Tiny training sets (the conformance check's 50 items): the balance term's feedback grows with
# lr·batch/N, so at the published rates DCMH diverges there; a thirtieth of them trains stably
TINY = {"batch_size": 16, "lr_start": 1e-3, "lr_end": 1e-4}
# Feature inputs (Wikipedia): 100× the published rates, batches of 32; docs/methods/dcmh.md, "Feature inputs"
FEATURE_INPUTS = {"lr_start": 3.0, "lr_end": 0.3, "batch_size": 32}

# DCMH's own rows of its Tables 3 and 4 (the same numbers in both): 2,000 random queries (2,100 on
# NUS-WIDE), the rest as the retrieval set; CNN-F pretrained on ImageNet.
# Their mAP is the MATLAB release's (calcMapTopkMapTopkPreTopkRecLabel.m without topk): the variant
# "dcmh_map", whole ranking with stable ties, divided by all queries.
_TABLE = "DCMH (CVPR 2017), Tables 3 and 4"
_SETTING = "CNN-F image net; paper's random split"
_DEFINITION = "dcmh_map"
REPORTED = (
    reported_table("mirflickr", _TABLE, _SETTING, {"i2t": (0.7410, 0.7465, 0.7485), "t2i": (0.7827, 0.7900, 0.7932)},
                   definition=_DEFINITION)
    + reported_table("iapr", _TABLE, _SETTING, {"i2t": (0.4526, 0.4732, 0.4844), "t2i": (0.5185, 0.5378, 0.5468)},
                     definition=_DEFINITION)
    + reported_table("nuswide", _TABLE, _SETTING, {"i2t": (0.5903, 0.6031, 0.6093), "t2i": (0.6389, 0.6511, 0.6571)},
                     definition=_DEFINITION)
)

SPEC = MethodSpec(
    name="dcmh",
    description="Deep Cross-Modal Hashing: end-to-end CNN + MLP with pairwise likelihood",
    citation=Citation("Deep Cross-Modal Hashing", "CVPR", 2017, "Qing-Yuan Jiang, Wu-Jun Li",
                      url="https://openaccess.thecvf.com/content_cvpr_2017/html/Jiang_Deep_Cross-Modal_Hashing_CVPR_2017_paper.html"),
    code_url="https://github.com/jiangqy/DCMH-CVPR2017",
    create=lazy("cmhbench_methods.dcmh.model:DCMH"),
    params=DCMHParams,
    presets={"quick": QUICK, "features": FEATURE_INPUTS, "tiny": TINY},
    image_encoder="cnnf",  # the release's backbone; --image-encoder alexnet where no CNN-F weights are at hand
    stages={"train": "epochs"},
    cuda_precision="fp32",  # the release trains in fp32
    reported=REPORTED,
)
