"""DAPH (Tu et al., SIGIR 2023): the spec and published hyper-parameters, torch-free; the method is
in ``model.py`` (networks in ``networks.py``, losses in ``losses.py``), the audit against the
official code in docs/methods/daph.md."""

from dataclasses import dataclass
from typing import Literal

from cmhbench.specs import Citation, MethodSpec, lazy


@dataclass(frozen=True)
class DAPHParams:
    # stage 1: the data-aware proxy network
    proxy_epochs: int = 80
    proxy_batch_size: int = 90
    proxy_lr: float = 2e-4
    class_lr: float = 1e-3
    alpha: float = 0.2
    beta: float = 0.2
    #: read the proxies out with dropout active, as the code does after its last epoch
    proxy_dropout: bool = True
    use_l1: bool = True
    use_l2: bool = True
    use_l3: bool = True
    use_qtf: bool = True
    #: class proxies learnt without any data term (no data awareness)
    label_only_class_codes: bool = False
    #: train the image branch's heads too (the code's optimiser holds only the backbone)
    proxy_train_image_heads: bool = False
    # stage 2: modality-specific hashing
    epochs: int = 220
    batch_size: int = 128
    lr: float = 0.005
    eta: float = 1.0
    use_same: bool = True
    use_class: bool = True
    use_similar: bool = True
    # both stages
    gamma: float = 20.0
    sigma: float = 0.2
    weight_decay: float = 1e-5
    #: both (stage 1 or its cached proxies, then stage 2), proxies (stage 1 only), hashing (stage 2
    #: from saved proxies), joint (the paper's joint-training ablation)
    stage: Literal["both", "proxies", "hashing", "joint"] = "both"


#: what the proxies depend on: the key of their cache
STAGE1_KEYS = ("alpha", "beta", "class_lr", "label_only_class_codes", "proxy_batch_size", "proxy_dropout",
               "proxy_epochs", "proxy_lr", "proxy_train_image_heads", "use_l1", "use_l2", "use_l3", "use_qtf",
               "gamma", "sigma", "weight_decay")
# Short budgets (toy v2): stage-2 batches of 32, the published rates (measured: docs/methods/daph.md)
QUICK = {"batch_size": 32}

SPEC = MethodSpec(
    name="daph", description="Data-Aware Proxy Hashing: learnt data-aware proxies, then modality-specific nets",
    citation=Citation("Data-Aware Proxy Hashing for Cross-modal Retrieval", "SIGIR", 2023,
                      "Rong-Cheng Tu, Xian-Ling Mao, Wenjin Ji, Wei Wei, Heyan Huang",
                      url="https://doi.org/10.1145/3539618.3591660"),
    code_url="https://github.com/rongchengtu1/DAPH",
    create=lazy("cmhbench_methods.daph.model:DAPH"), params=DAPHParams, presets={"quick": QUICK},
    image_encoder="alexnet",
    cuda_precision="fp32",  # the official code trains in fp32
    # joint training runs the proxy network inside the hashing loop, for its first proxy_epochs
    stages={"proxies": "proxy_epochs", "hashing": "epochs", "joint": "epochs"})
