"""SSAH (Li et al., CVPR 2018): the spec and published hyper-parameters, torch-free; the method is in
``model.py`` (networks in ``networks.py``, losses in ``losses.py``), the audit against the official
code in docs/methods/ssah.md."""

from dataclasses import dataclass, replace
from typing import Literal

from cmhbench.specs import Citation, MethodSpec, lazy, reported_table

@dataclass(frozen=True)
class SSAHParams:
    epochs: int = 500
    batch_size: int = 128
    #: weights of the pairwise (features), pairwise (hash), quantisation, label and adversarial terms
    alpha: float = 1.0
    gamma: float = 1.0
    beta: float = 1e-4
    eta: float = 1e-4
    delta: float = 1.0
    #: the paper's negative log-likelihood, or the official code's squared error
    pairwise: Literal["likelihood", "code"] = "likelihood"
    #: passes per learning-rate step of LabNet, the discriminators, ImgNet and TxtNet
    lab_passes: int = 10
    dis_passes: int = 1
    img_passes: int = 15
    txt_passes: int = 15
    #: learning rates 10^-(lr_x + lr_decay·(epoch + step))
    lr_lab: float = 2.0
    lr_img: float = 4.5
    lr_txt: float = 3.5
    lr_dis: float = 3.0
    lr_decay: float = 0.5
    dis_dropout: float = 0.0
    #: "code" sends no gradient into ImgNet/TxtNet, as the official code; "paper" lets it flow
    adversarial: Literal["code", "paper"] = "code"
    #: how the squared terms are reduced: the paper's sums, the code's tf.nn.l2_loss, or means
    reduction: Literal["sum", "half_sum", "mean"] = "sum"
    #: S_ij for pairs sharing a label (the code's 0.999)
    sim_scale: float = 1.0


PRESETS = {
    # the official code: all-ones weights, squared-error pairwise term, every squared term
    # tf.nn.l2_loss (half the sum), similarities 0.999 for pairs sharing a label
    "code": {"alpha": 1.0, "gamma": 1.0, "beta": 1.0, "eta": 1.0, "delta": 1.0, "pairwise": "code",
             "reduction": "half_sum", "sim_scale": 0.999},
    # short CPU budgets (toy v2): few passes and a slower decay (measured: docs/methods/ssah.md)
    "quick": {"lab_passes": 2, "dis_passes": 1, "img_passes": 1, "txt_passes": 2, "lr_img": 3.5, "lr_txt": 3.0,
              "lr_decay": 0.1, "batch_size": 64},
}
# tiny training sets (the conformance check's 50 items, 2 epochs): passes take full batches only, so
# batches of 64 give no step at all and leave the nets at their initialisation (collapsed codes); and
# the decay stretched over 2 epochs freezes the second. Measured, seeds 0-2: retrieval codes 10-18
# distinct of 90 items (top share 0.17-0.42), i2t 0.42-0.53, t2i 0.51-0.66
PRESETS["tiny"] = {**PRESETS["quick"], "batch_size": 16, "lr_decay": 0.0, "lab_passes": 4, "img_passes": 3,
                   "txt_passes": 4}

# SSAH's own rows ("OURS") of its tables 2 (baselines on CNN-F features) and 3 (VGG19 features), read
# off the authors' image of those tables in the official repository (lelan-li/SSAH, fig/map_.png, shown
# in its README under "Result"; the tables include MS COCO, as the arXiv version 1804.01223 does).
# Their mAP is utils/calc_hammingranking.py's calc_map (SSAH.py:272), DCMH's TensorFlow function that
# DAPH also uses: the variant "daph_map" (numpy.argsort ties, divided by all queries).
_SSAH_SOURCE = "SSAH (CVPR 2018, arXiv 1804.01223), Table {}, as in the authors' repository (fig/map_.png)"
_DEFINITION = "daph_map"
REPORTED = tuple(replace(figure, definition=_DEFINITION) for figure in (
    reported_table("mirflickr", _SSAH_SOURCE.format(2), "CNN-F features",
                   {"i2t": (0.782, 0.790, 0.800), "t2i": (0.791, 0.795, 0.803)})
    + reported_table("nuswide", _SSAH_SOURCE.format(2), "CNN-F features",
                     {"i2t": (0.642, 0.636, 0.639), "t2i": (0.669, 0.662, 0.666)})
    + reported_table("coco", _SSAH_SOURCE.format(2), "CNN-F features",
                     {"i2t": (0.550, 0.558, 0.557), "t2i": (0.537, 0.538, 0.529)})
    + reported_table("mirflickr", _SSAH_SOURCE.format(3), "VGG19 features",
                     {"i2t": (0.797, 0.809, 0.810), "t2i": (0.782, 0.797, 0.799)})
    + reported_table("nuswide", _SSAH_SOURCE.format(3), "VGG19 features",
                     {"i2t": (0.636, 0.636, 0.637), "t2i": (0.653, 0.676, 0.683)})
    + reported_table("coco", _SSAH_SOURCE.format(3), "VGG19 features",
                     {"i2t": (0.550, 0.577, 0.576), "t2i": (0.552, 0.578, 0.578)})
))

SPEC = MethodSpec(
    name="ssah", description="Self-Supervised Adversarial Hashing: label network guides image/text nets, with discriminators",
    citation=Citation("Self-Supervised Adversarial Hashing Networks for Cross-Modal Retrieval", "CVPR", 2018,
                      "Chao Li, Cheng Deng, Ning Li, Wei Liu, Xinbo Gao, Dacheng Tao",
                      url="https://openaccess.thecvf.com/content_cvpr_2018/html/Li_Self-Supervised_Adversarial_Hashing_CVPR_2018_paper.html"),
    code_url="https://github.com/lelan-li/SSAH",
    create=lazy("cmhbench_methods.ssah.model:SSAH"), params=SSAHParams, presets=PRESETS, image_encoder="cnnf",
    stages={"train": "epochs"},
    cuda_precision="fp32",  # the official code trains in fp32
    reported=REPORTED)
