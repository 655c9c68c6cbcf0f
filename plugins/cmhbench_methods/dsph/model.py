"""DSPH: DCHMT's towers, BertAdam and loop with tanh heads (DCHMT's ``linear`` head), trained against
label proxies shared by the two modalities (losses.py). Deviations from the release: docs/methods/dsph.md."""

from __future__ import annotations

import torch
from torch import nn

from cmhbench.method import MethodSetup
from cmhbench_methods.dchmt.model import DCHMT, LinearHead
from cmhbench_methods.dsph import code_table_margin
from cmhbench_methods.dsph.losses import dsph_loss


class Proxies(nn.Module):
    """One learnable real-valued proxy per label, classes × bits, drawn as the release draws them
    (``kaiming_normal_(mode='fan_out')``: N(0, 2/classes))."""

    def __init__(self, classes: int, bits: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(classes, bits))
        nn.init.kaiming_normal_(self.weight, mode="fan_out")


def tanh_head(in_dim: int, bits: int, init: str) -> LinearHead:
    """Linear(in, K), dropout 0.2, tanh; the release keeps torch's default initialisation."""
    head = LinearHead(in_dim, bits)
    if init == "default":
        head.fc.reset_parameters()
    return head


class DSPH(DCHMT):
    stateful = (*DCHMT.stateful, "proxies", "proxy_optimizer")

    def __init__(self, setup: MethodSetup):
        hp = setup.params
        # looked up before the towers are built, so that a size outside the table is refused at once
        delta = hp.delta if hp.delta is not None else code_table_margin(setup.bits, setup.num_labels)
        super().__init__(setup)
        self.delta = delta
        self.proxies = Proxies(setup.num_labels, self.bits).to(self.device)
        self.proxy_optimizer = torch.optim.SGD(self.proxies.parameters(), lr=hp.proxy_lr, momentum=hp.proxy_momentum,
                                               weight_decay=hp.proxy_weight_decay)

    def make_head(self, in_dim: int) -> nn.Module:
        return tanh_head(in_dim, self.bits, self.hp.head_init)

    def batch_loss(self, image: torch.Tensor, text: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return dsph_loss(image, text, self.proxies.weight, labels, self.delta, self.hp.alpha)

    @property
    def optimizers(self) -> tuple[torch.optim.Optimizer, ...]:
        return (self.optimizer, self.proxy_optimizer)
