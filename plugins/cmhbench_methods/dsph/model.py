"""DSPH: both CLIP towers fine-tuned, each with a tanh head (DCHMT's ``linear`` head), trained against
label proxies shared by the two modalities (losses.py). Deviations from the release: docs/methods/dsph.md."""

from __future__ import annotations

import math

import torch
from torch import nn

from cmhbench.errors import CmhbenchError
from cmhbench.method import HashingMethod, MethodSetup, to_codes
from cmhbench.toolkit import EpochLosses
from cmhbench.toolkit.bert_adam import BertAdam
from cmhbench_methods.dchmt.model import LinearHead
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


class DSPH(HashingMethod):
    stateful = ("image_net", "text_net", "proxies", "optimizer", "proxy_optimizer")

    def __init__(self, setup: MethodSetup):
        super().__init__(setup)
        hp = self.hp
        text_tower = setup.text_encoder
        if not 3 <= hp.max_words <= text_tower.context_length:
            raise CmhbenchError(f"dsph: max_words={hp.max_words}; expected 3..{text_tower.context_length} "
                                "(the text tower's context)")
        text_tower.context_length = hp.max_words
        self.delta = hp.delta if hp.delta is not None else code_table_margin(self.bits, setup.num_labels)
        self.image_net = nn.Sequential(setup.image_encoder,
                                       tanh_head(setup.image_encoder.out_dim, self.bits, hp.head_init)).to(self.device)
        self.text_net = nn.Sequential(text_tower, tanh_head(text_tower.out_dim, self.bits, hp.head_init)).to(self.device)
        self.proxies = Proxies(setup.num_labels, self.bits).to(self.device)
        self.optimizer = BertAdam.for_fine_tuning(
            [*self.image_net[0].parameters(), *self.text_net[0].parameters()],
            [*self.image_net[1].parameters(), *self.text_net[1].parameters()], hp)
        self.proxy_optimizer = torch.optim.SGD(self.proxies.parameters(), lr=hp.proxy_lr, momentum=hp.proxy_momentum,
                                               weight_decay=hp.proxy_weight_decay)

    def fit(self, train, ctx) -> None:
        self.optimizer.lay_schedule(math.ceil(len(train) / self.hp.batch_size), ctx.planned_epochs("train"))
        for epoch in ctx.epochs("train"):
            self.image_net.train()
            self.text_net.train()
            losses = EpochLosses()
            for batch in train.batches(self.hp.batch_size, shuffle=True, generator=ctx.generator):
                with ctx.autocast():
                    image = self.image_net(batch.images)
                    text = self.text_net(batch.texts)
                loss = dsph_loss(image.float(), text.float(), self.proxies.weight, batch.labels, self.delta,
                                 self.hp.alpha)
                self.optimizer.zero_grad(set_to_none=True)
                self.proxy_optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                self.proxy_optimizer.step()
                losses.add(len(batch.positions), loss=loss)
            ctx.log("train", epoch, **losses.means(divisor=len(train)))

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        self.image_net.eval()
        return to_codes(self.image_net(images).float())

    def encode_text(self, texts: torch.Tensor) -> torch.Tensor:
        self.text_net.eval()
        return to_codes(self.text_net(texts).float())
