"""DAPH's spec and published hyper-parameters (torch-free, so that listing methods is fast); the
method is in daph.py."""

from cmhbench.specs import Citation, MethodSpec, lazy

STAGE1 = {"proxy_epochs": 80, "proxy_batch_size": 90, "proxy_lr": 2e-4, "class_lr": 1e-3, "alpha": 0.2,
          "beta": 0.2, "proxy_dropout": True, "use_l1": True, "use_l2": True, "use_l3": True,
          "use_qtf": True, "label_only_class_codes": False, "proxy_train_image_heads": False}
STAGE2 = {"epochs": 220, "batch_size": 128, "lr": 0.005, "eta": 1.0, "use_same": True, "use_class": True,
          "use_similar": True}
DEFAULTS = {**STAGE1, **STAGE2, "gamma": 20.0, "sigma": 0.2, "weight_decay": 1e-5, "stage": "both"}
# Short-budget setting (toy v2: 500 training items, pretrained toy-cnn): the published rates with
# stage-2 batches of 32, so an epoch takes 15 steps instead of 3. Measured on toy v2: i2t 0.841 /
# 0.860 / 0.844 / 0.859 at budgets of 15 / 30 / 60 / 120 (t2i 0.795 / 0.812 / 0.803 / 0.839); at
# 60, v1's larger rates (0.01 / 0.01 / 0.05) give 0.843 / 0.797.
QUICK = {"batch_size": 32}
STAGES = ("both", "proxies", "hashing", "joint")


SPEC = MethodSpec(
    name="daph", description="Data-Aware Proxy Hashing: learnt data-aware proxies, then modality-specific nets",
    citation=Citation("Data-Aware Proxy Hashing for Cross-modal Retrieval", "SIGIR", 2023,
                      "Rong-Cheng Tu, Xian-Ling Mao, Wenjin Ji, Wei Wei, Heyan Huang",
                      url="https://doi.org/10.1145/3539618.3591660"),
    code_url="https://github.com/rongchengtu1/DAPH",
    create=lazy("cmhbench_methods.daph:DAPH"), defaults=DEFAULTS, presets={"quick": QUICK}, image_encoder="alexnet",
    choices={"stage": STAGES},
    cuda_precision="fp32",  # the official code trains in fp32
    # joint training runs the proxy network inside the hashing loop, for its first proxy_epochs
    stages={"proxies": "proxy_epochs", "hashing": "epochs", "joint": "epochs"})
