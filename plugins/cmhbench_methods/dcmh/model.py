"""DCMH: an image net and a text net trained in turn on the pairwise likelihood

    −Σ_ij (S_ij Θ_ij − log(1 + e^Θ_ij)) + γ(‖B − F‖² + ‖B − G‖²) + η(‖F1‖² + ‖G1‖²),   Θ = ½FᵀG,

where F and G hold every training item's output (updated by batch index) and B = sign(γ(F + G)) is
refreshed after each epoch. Plain SGD, a log-uniform rate decay over the run, texts centred on the
train split. Deviations from the release (a permutation per epoch instead of sampling with
replacement) and the feature-input networks: docs/methods/dcmh.md.
"""

from __future__ import annotations

import torch
from torch import nn

from cmhbench.method import HashingMethod, MethodSetup
from cmhbench.toolkit import (EpochLosses, InputNormaliser, TwoNetworkCodes, log_uniform_schedule, normal_init, set_lr, similarity,
                              without_dropout)
from cmhbench_methods.dcmh.losses import batch_loss, objective


def vector_net(input_dim: int, hidden: int, bits: int) -> nn.Sequential:
    """The DCMH text network: input -> hidden (ReLU) -> K."""
    return normal_init(nn.Sequential(nn.Linear(input_dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, bits)))


def image_head(setup: MethodSetup) -> nn.Module:
    """The layers on the image encoder: the hash layer on a CNN's 4096-d features (the release), or
    on feature inputs the text net's structure (``feature_image_net="mlp"``, the paper's network for
    vector inputs) or the hash layer alone (``"linear"``)."""
    width, hp = setup.image_encoder.out_dim, setup.params
    if "image" in setup.features_in and hp.feature_image_net == "mlp":
        return vector_net(width, hp.hidden, setup.bits)
    return normal_init(nn.Linear(width, setup.bits))


class DCMH(TwoNetworkCodes, HashingMethod):
    stateful = ("image_net", "text_net", "image_opt", "text_opt", "F", "G", "B", "normalise")

    def __init__(self, setup: MethodSetup):
        super().__init__(setup)
        hp, bits, n, device = self.hp, setup.bits, setup.num_train, setup.device
        self.image_net = nn.Sequential(without_dropout(setup.image_encoder), image_head(setup)).to(device)
        self.text_net = nn.Sequential(setup.text_encoder, vector_net(setup.text_encoder.out_dim, hp.hidden, bits)).to(device)
        self.normalise = InputNormaliser.for_setup(setup)
        if hp.buffer_init == "random":
            g = torch.Generator().manual_seed(setup.seed)
            self.F = torch.randn(bits, n, generator=g).to(device)
            self.G = torch.randn(bits, n, generator=g).to(device)
        else:
            self.F = torch.zeros(bits, n, device=device)
            self.G = torch.zeros(bits, n, device=device)
        self.B = self.codes()  # sign(0) = 0 for the zero buffers, as the release's first epoch
        self.image_opt = torch.optim.SGD(self.image_net.parameters(), lr=hp.lr_start, weight_decay=hp.weight_decay)
        self.text_opt = torch.optim.SGD(self.text_net.parameters(), lr=hp.lr_start, weight_decay=hp.weight_decay)

    def fit(self, train, ctx) -> None:
        # the rate decays over the epochs this run's budget gives, start to end as published
        rates = log_uniform_schedule(self.hp.lr_start, self.hp.lr_end, ctx.planned_epochs("train"))
        self.normalise.fit(train)
        for epoch in ctx.epochs("train"):
            set_lr(self.text_opt, rates[epoch])
            set_lr(self.image_opt, rates[epoch])
            text_loss = self.epoch(train, ctx, "text")
            image_loss = self.epoch(train, ctx, "image")
            # B for the next epoch, and the objective scored against it (docs/methods/dcmh.md, "Why the loss rose")
            self.B = self.codes()
            ctx.log("train", epoch, text_loss=text_loss, image_loss=image_loss,
                    objective=objective(self.F, self.G, self.B, train.labels, self.hp.gamma, self.hp.eta))

    def epoch(self, train, ctx, modality: str) -> float:
        """One pass of one modality's net over the training set; its outputs update F (or G)."""
        if modality == "image":
            net, opt, own, other = self.image_net, self.image_opt, self.F, self.G
        else:
            net, opt, own, other = self.text_net, self.text_opt, self.G, self.F
        net.train()
        losses = EpochLosses()
        for batch in train.batches(self.hp.batch_size, shuffle=True, generator=ctx.generator, modalities=(modality,)):
            idx = batch.positions
            with ctx.autocast():
                out = net(self.normalise(batch.images if modality == "image" else batch.texts, modality))
            out = out.float()  # (b, K)
            own[:, idx] = out.detach().T
            loss = batch_loss(out, idx, own, other, self.B, similarity(batch.labels, train.labels),
                              self.hp.gamma, self.hp.eta)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.add(len(idx), loss=loss)
        return losses.means(divisor=len(train)).get("loss", 0.0)

    def codes(self) -> torch.Tensor:
        """B = sign(γ(F + G)), the release's update at the start of every epoch."""
        return torch.sign(self.hp.gamma * (self.F + self.G))
