"""SSAH's spec and published hyper-parameters (torch-free, so that listing methods is fast); the
method is in ssah.py."""

from cmhbench.specs import Citation, MethodSpec, lazy, reported_table

DEFAULTS = {"epochs": 500, "batch_size": 128, "alpha": 1.0, "gamma": 1.0, "beta": 1e-4, "eta": 1e-4,
            "delta": 1.0, "pairwise": "likelihood", "lab_passes": 10, "dis_passes": 1, "img_passes": 15,
            "txt_passes": 15, "lr_lab": 2.0, "lr_img": 4.5, "lr_txt": 3.5, "lr_dis": 3.0, "lr_decay": 0.5,
            "dis_dropout": 0.0, "adversarial": "code", "reduction": "sum", "sim_scale": 1.0}
PRESETS = {
    # the official code: all-ones weights, squared-error pairwise term, every squared term
    # tf.nn.l2_loss (half the sum), similarities 0.999 for pairs sharing a label
    "code": {"alpha": 1.0, "gamma": 1.0, "beta": 1.0, "eta": 1.0, "delta": 1.0, "pairwise": "code",
             "reduction": "half_sum", "sim_scale": 0.999},
    # short CPU budgets (toy v2): few passes, and a decay of 10^-0.1 instead of 10^-0.5 per
    # published epoch (under toy v2's budget of 120 that is 10^-0.42 per epoch run: the rates
    # freeze after about 20). Measured on toy v2: i2t 0.616 / t2i 0.599 in 71 s. Slower decay
    # (budget 60, 10^-0.17 per epoch run) gave 0.564 / 0.648 in 197 s
    "quick": {"lab_passes": 2, "dis_passes": 1, "img_passes": 1, "txt_passes": 2, "lr_img": 3.5, "lr_txt": 3.0,
              "lr_decay": 0.1, "batch_size": 64},
}
# how the squared terms are reduced (ssah.REDUCTIONS implements them)
REDUCTION_NAMES = ("sum", "half_sum", "mean")

# SSAH's own rows ("OURS") of its tables 2 (baselines on CNN-F features) and 3 (VGG19 features), read
# off the authors' image of those tables in the official repository (lelan-li/SSAH, fig/map_.png, shown
# in its README under "Result"; the tables include MS COCO, as the arXiv version 1804.01223 does).
_SSAH_SOURCE = "SSAH (CVPR 2018, arXiv 1804.01223), Table {}, as in the authors' repository (fig/map_.png)"
REPORTED = (
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
)

SPEC = MethodSpec(
    name="ssah", description="Self-Supervised Adversarial Hashing: label network guides image/text nets, with discriminators",
    citation=Citation("Self-Supervised Adversarial Hashing Networks for Cross-Modal Retrieval", "CVPR", 2018,
                      "Chao Li, Cheng Deng, Ning Li, Wei Liu, Xinbo Gao, Dacheng Tao",
                      url="https://openaccess.thecvf.com/content_cvpr_2018/html/Li_Self-Supervised_Adversarial_Hashing_CVPR_2018_paper.html"),
    code_url="https://github.com/lelan-li/SSAH",
    create=lazy("cmhbench_methods.ssah:SSAH"), defaults=DEFAULTS, presets=PRESETS, image_encoder="cnnf", stages={"train": "epochs"},
    cuda_precision="fp32",  # the official code trains in fp32
    # adversarial: "code" sends no gradient into ImgNet/TxtNet, as the official code; "paper" lets it flow
    choices={"adversarial": ("code", "paper"), "pairwise": ("likelihood", "code"), "reduction": REDUCTION_NAMES},
    reported=REPORTED)
