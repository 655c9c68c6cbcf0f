"""DCMH: Deep Cross-Modal Hashing (Jiang & Li, CVPR 2017).

Faithful to the paper and the authors' MatConvNet release (``DCMH_matlab/DCMH_matlab``); the
line-by-line audit is docs/methods/dcmh.md:

* image net: backbone up to its 4096-d layer + linear to K (CNN-F in the paper and the release:
  the default ``cnnf`` encoder, which needs MatConvNet's imagenet-vgg-f.mat as ``--image-weights
  PATH``; ``--image-encoder alexnet`` is the stand-in, its dropout layers removed since CNN-F has
  none); text net: bag of words -> 8192 (ReLU) -> K, weights and biases N(0, 0.01²);
* loss  -Σ_ij (S_ij Θ_ij - log(1 + e^Θ_ij)) + γ(‖B - F‖² + ‖B - G‖²) + η(‖F1‖² + ‖G1‖²),
  Θ = ½FᵀG over the whole training set; F and G hold every training item's output and are updated
  by batch index; B = sign(γ(F + G)) at the start of every epoch;
* each epoch updates the text net over the training set, then the image net (the release's order);
* plain SGD, gradients divided by batch·N as in the release's ``update_net``, weight decay 5e-4,
  learning rate decaying log-uniformly from 10^-1.5 to 10^-3 over the run; batch 128; γ = η = 1;
  500 epochs published. F and G start at zero (the release; its TensorFlow port starts them random);
* texts are zero-mean normalised (``normZeroMean``); we take the mean over the training split only,
  where the release used the whole dataset, so that nothing of the query split leaks into training.
  Feature inputs (precomputed image features, or text features such as LDA topics) are also scaled
  to unit variance per dimension (``normEqualVariance``, which the release ships in its utils but
  its demo does not call; our addition): without it, features whose
  rows sum to one (Wikipedia's) give N(0, 0.01²)-initialised nets activations near 1e-4 that never
  move.

Deviation, documented: the release draws each batch as a fresh random subset (sampling with
replacement across steps); we visit a fresh permutation each epoch, so every item is seen once per
epoch (and the last batch of an epoch holds the remainder). Precision: fp32 by default on every
device, as the release. For feature datasets (identity image encoder) the image net has the text net's structure
(input -> 8192 -> K), the paper's network for vector inputs.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cmhbench.method import HashingMethod, MethodSetup
from cmhbench_methods.dcmh_spec import DEFAULTS, FEATURE_INPUTS, QUICK, SPEC  # noqa: F401 (re-exported)
from cmhbench_methods.common import (InputNormaliser, TwoNetworkCodes, is_feature_encoder, log_uniform_schedule,
                                     normal_init, set_lr, similarity, without_dropout)



def vector_net(input_dim: int, hidden: int, bits: int) -> nn.Sequential:
    """The DCMH text network: input -> hidden (ReLU) -> K."""
    return normal_init(nn.Sequential(nn.Linear(input_dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, bits)))


def batch_loss(out: torch.Tensor, idx: torch.Tensor, own: torch.Tensor, other: torch.Tensor,
               codes: torch.Tensor, s: torch.Tensor, gamma: float, eta: float) -> torch.Tensor:
    """The DCMH objective's terms that depend on one batch of one modality, divided by batch·N.

    ``out`` (b×K) are the batch's live outputs; ``own`` (K×N) this modality's stored outputs (the
    batch's columns included), ``other`` (K×N) the other modality's, ``codes`` B (K×N), ``s`` the
    b×N similarity rows. Its gradient is the release's hand-written one: ½·other·(σ(Θ) − S)ᵀ +
    2γ(out − B) + 2η·own·1, over batch·N.
    """
    n = own.shape[1]
    theta = 0.5 * out @ other  # (b, N): Θ between this batch and every training item
    likelihood = (F.softplus(theta) - s * theta).sum()
    quantisation = ((codes[:, idx].T - out) ** 2).sum()
    # ‖own·1‖² with this batch's columns live and every other column fixed
    others_sum = own.sum(1) - own[:, idx].sum(1)
    balance = ((out.sum(0) + others_sum) ** 2).sum()
    return (likelihood + gamma * quantisation + eta * balance) / (len(idx) * n)


class DCMH(TwoNetworkCodes, HashingMethod):
    def __init__(self, setup: MethodSetup):
        super().__init__(setup)
        hp = self.hparams
        bits, device = setup.bits, setup.device
        if is_feature_encoder(setup.image_encoder) and hp["feature_image_net"] == "mlp":
            head = vector_net(setup.image_encoder.out_dim, int(hp["hidden"]), bits)
        else:
            head = normal_init(nn.Linear(setup.image_encoder.out_dim, bits))
        self.image_net = nn.Sequential(without_dropout(setup.image_encoder), head).to(device)
        self.text_net = nn.Sequential(setup.text_encoder, vector_net(setup.text_encoder.out_dim, int(hp["hidden"]), bits)).to(device)
        self.normalise = InputNormaliser(device, is_feature_encoder(setup.image_encoder),
                                         setup.text_kind == "features")
        n = setup.num_train
        if hp["buffer_init"] == "random":
            g = torch.Generator().manual_seed(setup.seed)
            self.F = torch.randn(bits, n, generator=g).to(device)
            self.G = torch.randn(bits, n, generator=g).to(device)
        else:
            self.F = torch.zeros(bits, n, device=device)
            self.G = torch.zeros(bits, n, device=device)
        self.B = self._codes()  # sign(0) = 0 for the zero buffers, as the release's first epoch
        sgd = dict(lr=float(hp["lr_start"]), weight_decay=float(hp["weight_decay"]))
        self.image_opt = torch.optim.SGD(self.image_net.parameters(), **sgd)
        self.text_opt = torch.optim.SGD(self.text_net.parameters(), **sgd)

    # --- training -----------------------------------------------------------------------
    def fit(self, train, ctx) -> None:
        hp = self.hparams
        published = int(hp["epochs"])
        # the rate decays over the epochs this run's budget gives, start to end as published
        lrs = log_uniform_schedule(float(hp["lr_start"]), float(hp["lr_end"]), ctx.planned_epochs(published))
        self.normalise.fit(train)
        labels = train.labels
        for epoch in ctx.epochs(published, stage="train"):
            set_lr(self.text_opt, lrs[epoch])
            set_lr(self.image_opt, lrs[epoch])
            text_loss = self._epoch(train, ctx, "text", labels)
            image_loss = self._epoch(train, ctx, "image", labels)
            # B for the next epoch, and the objective scored against it: scored against the
            # start-of-epoch B, the first epoch's B is sign(0) = 0 and lacks the quantisation term,
            # so the logged curve rose after epoch one although nothing got worse
            self.B = self._codes()
            ctx.log("train", epoch, text_loss=text_loss, image_loss=image_loss, objective=self.objective(labels))

    def _epoch(self, train, ctx, modality: str, labels: torch.Tensor) -> float:
        hp = self.hparams
        gamma, eta = float(hp["gamma"]), float(hp["eta"])
        n = labels.shape[0]
        if modality == "image":
            net, opt, own, other = self.image_net, self.image_opt, self.F, self.G
        else:
            net, opt, own, other = self.text_net, self.text_opt, self.G, self.F
        net.train()
        total = 0.0
        for batch in train.batches(int(hp["batch_size"]), shuffle=True, generator=ctx.generator,
                                   modalities=(modality,)):
            idx = batch.positions
            raw = self.normalise(batch.images if modality == "image" else batch.texts, modality)
            with ctx.autocast():
                out = net(raw)
            out = out.float()  # (b, K)
            own[:, idx] = out.detach().T
            loss = batch_loss(out, idx, own, other, self.B, similarity(batch.labels, labels), gamma, eta)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        return total / n

    def _codes(self) -> torch.Tensor:
        """B = sign(γ(F + G)), the release's update at the start of every epoch."""
        return torch.sign(float(self.hparams["gamma"]) * (self.F + self.G))

    def objective(self, labels: torch.Tensor) -> float:
        """The full DCMH objective over the training set (the release's ``calc_loss``)."""
        hp = self.hparams
        theta = 0.5 * self.F.T @ self.G
        s = similarity(labels, labels)
        likelihood = (F.softplus(theta) - s * theta).sum()
        quantisation = ((self.F - self.B) ** 2).sum() + ((self.G - self.B) ** 2).sum()
        balance = (self.F.sum(1) ** 2).sum() + (self.G.sum(1) ** 2).sum()
        return float(likelihood + float(hp["gamma"]) * quantisation + float(hp["eta"]) * balance)

    # --- state --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "image_net": self.image_net.state_dict(), "text_net": self.text_net.state_dict(),
            "image_opt": self.image_opt.state_dict(), "text_opt": self.text_opt.state_dict(),
            "F": self.F, "G": self.G, "B": self.B, "inputs": self.normalise.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.image_net.load_state_dict(state["image_net"])
        self.text_net.load_state_dict(state["text_net"])
        self.image_opt.load_state_dict(state["image_opt"])
        self.text_opt.load_state_dict(state["text_opt"])
        for key in ("F", "G", "B"):
            setattr(self, key, state[key].to(self.device))
        self.normalise.load_state_dict(state["inputs"], self.device)
