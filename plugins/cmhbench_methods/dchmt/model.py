"""DCHMT: both CLIP towers fine-tuned, each with its own hash head, trained on pair distances of
the heads' outputs (losses.py) with BertAdam. Deviations from the release: docs/methods/dchmt.md."""

from __future__ import annotations

import math

import torch
from torch import nn

from cmhbench.method import HashingMethod, MethodSetup, to_codes
from cmhbench.toolkit import EpochLosses, cut_caption_context, similarity
from cmhbench.toolkit.bert_adam import BertAdam
from cmhbench_methods.dchmt.losses import dchmt_loss

SELECT_WIDTH = 128  # HashLayer.LINEAR_EMBED


def kaiming_fan_out_(weight: torch.Tensor, fan_out: int) -> None:
    """``nn.init.kaiming_uniform_(mode='fan_out')`` for a layer of ``fan_out`` outputs: U(±√(6/fan_out))."""
    bound = math.sqrt(6.0 / fan_out)
    nn.init.uniform_(weight, -bound, bound)


class SelectHead(nn.Module):
    """HashLayer: Linear(512, 128), ReLU, then K two-way linear heads, each softmaxed: N×K×2. The K
    heads are one Linear(128, 2K) initialised as K separate Linear(128, 2) (fan-out 2)."""

    def __init__(self, in_dim: int, bits: int):
        super().__init__()
        self.bits = bits
        self.fc = nn.Linear(in_dim, SELECT_WIDTH)
        self.heads = nn.Linear(SELECT_WIDTH, 2 * bits)
        kaiming_fan_out_(self.fc.weight, SELECT_WIDTH)
        kaiming_fan_out_(self.heads.weight, 2)
        nn.init.zeros_(self.fc.bias)
        nn.init.zeros_(self.heads.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.heads(torch.relu(self.fc(x))).view(len(x), self.bits, 2)
        return torch.softmax(logits, dim=-1)

    @staticmethod
    def codes(probabilities: torch.Tensor) -> torch.Tensor:
        """+1 where the second side is likelier (the release's argmax: a tie gives -1)."""
        return torch.where(probabilities[..., 1] > probabilities[..., 0], 1, -1).to(torch.int8)


class LinearHead(nn.Module):
    """LinearHash: Linear(512, K), dropout 0.2, tanh."""

    def __init__(self, in_dim: int, bits: int):
        super().__init__()
        self.fc = nn.Linear(in_dim, bits)
        kaiming_fan_out_(self.fc.weight, bits)
        nn.init.zeros_(self.fc.bias)
        self.dropout = nn.Dropout(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dropout(self.fc(x)))

    @staticmethod
    def codes(values: torch.Tensor) -> torch.Tensor:
        return to_codes(values)


class DCHMT(HashingMethod):
    """Also the base of DSPH, which keeps the towers, BertAdam and the loop and changes the heads
    (``make_head``), the objective (``batch_loss``) and adds an optimiser (``optimizers``)."""

    stateful = ("image_net", "text_net", "optimizer")

    def __init__(self, setup: MethodSetup):
        super().__init__(setup)
        text_tower = setup.text_encoder
        cut_caption_context(text_tower, self.hp.max_words, type(self).__name__.lower())
        self.image_net = nn.Sequential(setup.image_encoder, self.make_head(setup.image_encoder.out_dim)).to(self.device)
        self.text_net = nn.Sequential(text_tower, self.make_head(text_tower.out_dim)).to(self.device)
        self.optimizer = BertAdam.for_fine_tuning(
            [*self.image_net[0].parameters(), *self.text_net[0].parameters()],
            [*self.image_net[1].parameters(), *self.text_net[1].parameters()], self.hp)

    def make_head(self, in_dim: int) -> nn.Module:
        head = SelectHead if self.hp.hash_layer == "select" else LinearHead
        return head(in_dim, self.bits)

    def batch_loss(self, image: torch.Tensor, text: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return dchmt_loss(image.flatten(1), text.flatten(1), similarity(labels, labels), self.bits, self.hp)

    @property
    def optimizers(self) -> tuple[torch.optim.Optimizer, ...]:
        return (self.optimizer,)

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
                loss = self.batch_loss(image.float(), text.float(), batch.labels)
                for optimizer in self.optimizers:
                    optimizer.zero_grad(set_to_none=True)
                loss.backward()
                for optimizer in self.optimizers:
                    optimizer.step()
                losses.add(len(batch.positions), loss=loss)
            ctx.log("train", epoch, **losses.means(divisor=len(train)))

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        self.image_net.eval()
        return self.image_net[1].codes(self.image_net(images).float())

    def encode_text(self, texts: torch.Tensor) -> torch.Tensor:
        self.text_net.eval()
        return self.text_net[1].codes(self.text_net(texts).float())
