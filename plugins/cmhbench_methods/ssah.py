"""SSAH: Self-Supervised Adversarial Hashing (Li et al., CVPR 2018).

Faithful to the paper and the authors' TensorFlow code (``lelan-li/SSAH``):

* **LabNet**: labels -> 4096 (ReLU, local response normalisation) -> 512 semantic feature (ReLU) ->
  hash (K, tanh) and label (C, sigmoid) heads;
* **ImgNet**: backbone to its 4096-d layer (CNN-F in the paper, AlexNet our stand-in) -> fc8 512
  (ReLU, the semantic feature) -> hash and label heads;
* **TxtNet**: bag of words -> multi-scale fusion (average pooling with widths 5×{10, 6, 3, 2, 1},
  each followed by a single-weight 1×1 convolution and ReLU, resized back to the input length with
  TensorFlow 1's bilinear resize, concatenated with the input as 6 channels) -> 4096 (ReLU, LRN) ->
  512 (ReLU, the feature; LRN) -> hash and label heads. Pooling widths wider than the text are
  skipped (Wikipedia's 10-d topics keep widths 5 and 10);
* **two discriminators** (image-vs-label, text-vs-label semantic features): 512 -> 512 -> 256 -> 1,
  label features are "real" (1); the code feeds keep_prob = 1, so dropout is off by default
  (``dis_dropout`` turns it on);
* **losses** per network: α·pairwise(semantic features vs LabNet's) + γ·pairwise(hash outputs vs
  LabNet's H) + β·‖B − H‖² + η·‖L̂ − L‖² (+ δ·adversarial for ImgNet/TxtNet), Θ = ½⟨a, b⟩,
  S_ij = 1 when items share a label. ``pairwise="likelihood"`` (default) is the paper's negative
  log-likelihood −Σ(S_ijΘ_ij − log(1 + e^Θ_ij)); ``pairwise="code"`` is the official code's squared
  error between SΘ and log(1 + e^Θ). Every term is a mean, as the code's criteria; B is the sign of
  the batch's own outputs during training and sign(F + G + H) after each epoch, as in the code;
* **schedule** (the code's nested loop): per epoch, LabNet for 2 learning-rate steps of up to 10 and
  5 passes, the discriminators for 2 steps of 1 pass, ImgNet and TxtNet for 3 steps of up to 15, 7
  and 5 passes; each stops early when a pass's loss stops falling. Adam; learning rates
  10^-(s + 0.5·i) for i = epoch + step (``lr_decay`` = 0.5), s = 2 (LabNet), 4.5 (ImgNet), 3.5 (TxtNet), 3
  (discriminators); batch 128; 500 epochs. Paper weights α = γ = 1, β = η = 1e-4, δ = 1 (default);
  the code's all-ones weights are the ``code`` preset.

**Adversarial term: code over paper.** In the official code the discriminators, when ImgNet and
TxtNet are trained, read their semantic features from placeholders fed with numpy copies
(``I_fea_batch`` <- ``var['feat_I']``, ``T_fea_batch`` <- ``Fea_T``), so δ·adversarial adds a
constant to the loss and no gradient reaches ImgNet/TxtNet: the discriminators train, but do not
steer the generators. ``adversarial="code"`` (default) reproduces this (the term is computed on
detached features). ``adversarial="paper"`` lets the gradient flow as the paper describes; measured
on Wikipedia (10-d topic texts, 16-32 bits) it pulls the image and text features onto LabNet's
near-zero features and every code collapses to one value (mAP 0.111 = the relevance rate).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cmhbench.method import HashingMethod, MethodSetup, to_codes
from cmhbench.specs import Citation, MethodSpec
from cmhbench_methods.common import InputNormaliser, is_feature_encoder, normal_init

SEMANTIC = 512
DEFAULTS = {"epochs": 500, "batch_size": 128, "alpha": 1.0, "gamma": 1.0, "beta": 1e-4, "eta": 1e-4,
            "delta": 1.0, "pairwise": "likelihood", "lab_passes": 10, "dis_passes": 1, "img_passes": 15,
            "txt_passes": 15, "lr_lab": 2.0, "lr_img": 4.5, "lr_txt": 3.5, "lr_dis": 3.0, "lr_decay": 0.5,
            "dis_dropout": 0.0, "adversarial": "code"}
PRESETS = {
    "code": {"alpha": 1.0, "gamma": 1.0, "beta": 1.0, "eta": 1.0, "delta": 1.0, "pairwise": "code"},
    # short CPU budgets (toy): few passes, and a decay of 10^-0.05 instead of 10^-0.5 per epoch (the
    # code's decay freezes every network within a handful of epochs)
    "quick": {"lab_passes": 2, "dis_passes": 1, "img_passes": 1, "txt_passes": 2, "lr_img": 3.5, "lr_txt": 3.0,
              "lr_decay": 0.05, "batch_size": 64},
}
POOL_LEVELS = (10, 6, 3, 2, 1)


def lrn(x: torch.Tensor) -> torch.Tensor:
    """TensorFlow's local_response_normalization(depth_radius=2, bias=2, alpha=1e-4, beta=0.75)
    over the feature axis: x / (2 + 1e-4·Σ_{|c'−c|≤2} x²)^0.75 (torch's size-5 LRN scales alpha by 1/5)."""
    return F.local_response_norm(x.unsqueeze(-1), size=5, alpha=5e-4, beta=0.75, k=2.0).squeeze(-1)


def tf1_bilinear_resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """TensorFlow 1 ``resize_images`` (bilinear, align_corners=False, no half-pixel centres) along the
    last axis: output j samples input position j·(in/out)."""
    length = x.shape[-1]
    position = torch.arange(size, dtype=torch.float64, device=x.device) * (length / size)
    left = position.floor().long().clamp(max=length - 1)
    right = (left + 1).clamp(max=length - 1)
    frac = (position - left.to(torch.float64)).to(x.dtype)
    return x[..., left] * (1 - frac) + x[..., right] * frac


class MultiScaleFusion(nn.Module):
    """[x, block(1), block(2), block(3), block(6), block(10)] as channels; block(l) = resize(ReLU(w·avgpool_{5l}(x)))."""

    def __init__(self, text_dim: int):
        super().__init__()
        self.levels = [level for level in reversed(POOL_LEVELS) if 5 * level <= text_dim]
        self.weights = nn.Parameter(torch.randn(len(self.levels)) * 0.01)
        self.channels = 1 + len(self.levels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = [x]
        for weight, level in zip(self.weights, self.levels):
            pooled = F.avg_pool1d(x.unsqueeze(1), kernel_size=5 * level, stride=5 * level).squeeze(1)
            parts.append(tf1_bilinear_resize(F.relu(weight * pooled), x.shape[-1]))
        return torch.stack(parts, dim=-1).flatten(1)  # (n, T·channels): the (1, T, 6, 4096) kernel


class Heads(nn.Module):
    """Semantic feature -> hash (tanh) and label (sigmoid) heads, N(0, 0.01²) as the code."""

    def __init__(self, bits: int, num_labels: int):
        super().__init__()
        self.hash = normal_init(nn.Linear(SEMANTIC, bits))
        self.label = normal_init(nn.Linear(SEMANTIC, num_labels))

    def forward(self, feature: torch.Tensor, head_input: torch.Tensor | None = None):
        h = feature if head_input is None else head_input
        return torch.tanh(self.hash(h)), feature, torch.sigmoid(self.label(h))


class LabNet(nn.Module):
    def __init__(self, num_labels: int, bits: int):
        super().__init__()
        self.fc1, self.fc2 = normal_init(nn.Linear(num_labels, 4096)), normal_init(nn.Linear(4096, SEMANTIC))
        self.heads = Heads(bits, num_labels)

    def forward(self, labels):
        return self.heads(F.relu(self.fc2(lrn(F.relu(self.fc1(labels))))))


class ImgNet(nn.Module):
    def __init__(self, encoder: nn.Module, encoder_dim: int, bits: int, num_labels: int):
        super().__init__()
        self.encoder, self.fc8 = encoder, normal_init(nn.Linear(encoder_dim, SEMANTIC))
        self.heads = Heads(bits, num_labels)

    def forward(self, images):
        return self.heads(F.relu(self.fc8(self.encoder(images))))


class TxtNet(nn.Module):
    def __init__(self, encoder: nn.Module, text_dim: int, bits: int, num_labels: int):
        super().__init__()
        self.encoder, self.fusion = encoder, MultiScaleFusion(text_dim)
        self.fc1 = normal_init(nn.Linear(text_dim * self.fusion.channels, 4096))
        self.fc2 = normal_init(nn.Linear(4096, SEMANTIC))
        self.heads = Heads(bits, num_labels)

    def forward(self, texts):
        feature = F.relu(self.fc2(lrn(F.relu(self.fc1(self.fusion(self.encoder(texts)))))))
        return self.heads(feature, lrn(feature))


class Discriminator(nn.Module):
    def __init__(self, dropout: float):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(SEMANTIC, 512), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(512, 256), nn.ReLU(), nn.Dropout(dropout), nn.Linear(256, 1))

    def forward(self, feature):
        return self.net(feature).squeeze(-1)


def pairwise(anchor: torch.Tensor, batch: torch.Tensor, s: torch.Tensor, form: str) -> torch.Tensor:
    """Θ = ½·anchor·batchᵀ (N×b). 'likelihood': mean of log(1+e^Θ) − SΘ (the paper's negative
    log-likelihood, as a mean like every term of the code); 'code': mean of (SΘ − log(1+e^Θ))²."""
    theta = 0.5 * anchor @ batch.T
    if form == "likelihood":
        return (F.softplus(theta) - s * theta).mean()
    if form == "code":
        return ((s * theta - F.softplus(theta)) ** 2).mean()
    raise ValueError(f"pairwise={form!r}: expected 'likelihood' or 'code'")


def modality_loss(hp, hash_out, feature, label_pred, labels, s, label_features, h_all, adversarial_logits=None):
    """α·pairwise(features) + γ·pairwise(hash) + β·quantisation + η·label (+ δ·adversarial)."""
    loss = (float(hp["alpha"]) * pairwise(label_features, feature, s, hp["pairwise"])
            + float(hp["gamma"]) * pairwise(h_all, hash_out, s, hp["pairwise"])
            + float(hp["beta"]) * ((torch.sign(hash_out).detach() - hash_out) ** 2).mean()
            + float(hp["eta"]) * ((labels - label_pred) ** 2).mean())
    if adversarial_logits is not None:
        loss = loss + float(hp["delta"]) * F.binary_cross_entropy_with_logits(
            adversarial_logits, torch.ones_like(adversarial_logits))
    return loss


class SSAH(HashingMethod):
    def __init__(self, setup: MethodSetup):
        super().__init__(setup)
        hp, bits, c, n, device = self.hparams, setup.bits, setup.num_labels, setup.num_train, setup.device
        self.normalise = InputNormaliser(device, is_feature_encoder(setup.image_encoder), setup.text_kind == "features")
        if is_feature_encoder(setup.image_encoder):
            # features: a learnt 4096-d layer stands in for the CNN (not in the code, so PyTorch's
            # default init: N(0, 0.01²) here would stack into near-constant outputs, measured)
            image_body = nn.Sequential(setup.image_encoder, nn.Linear(setup.image_encoder.out_dim, 4096), nn.ReLU())
        else:
            image_body = setup.image_encoder
        self.nets = nn.ModuleDict({
            "lab": LabNet(c, bits), "img": ImgNet(image_body, 4096, bits, c),
            "txt": TxtNet(setup.text_encoder, setup.text_encoder.out_dim, bits, c),
            "dis_img": Discriminator(float(hp["dis_dropout"])), "dis_txt": Discriminator(float(hp["dis_dropout"])),
        }).to(device)
        self.opts = {name: torch.optim.Adam(self.nets[name].parameters()) for name in ("lab", "img", "txt")}
        self.opts["dis"] = torch.optim.Adam(list(self.nets["dis_img"].parameters()) + list(self.nets["dis_txt"].parameters()))
        # per-item outputs over the training set, random at the start as in the code
        g = torch.Generator().manual_seed(setup.seed)
        self.memory = {key: torch.randn(n, width, generator=g).to(device) for key, width in
                       (("F", bits), ("G", bits), ("H", bits), ("feat_L", SEMANTIC), ("feat_I", SEMANTIC), ("feat_T", SEMANTIC))}
        self.memory["B"] = torch.sign(self.memory["F"] + self.memory["G"] + self.memory["H"])

    def fit(self, train, ctx) -> None:
        self.normalise.fit(train)
        hp = self.hparams
        for epoch in ctx.epochs(ctx.num_epochs(int(hp["epochs"])), stage="train"):
            lab = self._stage(train, ctx, "lab", epoch, 2, int(hp["lab_passes"]), float(hp["lr_lab"]))
            dis = self._stage(train, ctx, "dis", epoch, 2, int(hp["dis_passes"]), float(hp["lr_dis"]), stop_on_rise=False)
            img = self._stage(train, ctx, "img", epoch, 3, int(hp["img_passes"]), float(hp["lr_img"]))
            txt = self._stage(train, ctx, "txt", epoch, 3, int(hp["txt_passes"]), float(hp["lr_txt"]))
            m = self.memory
            m["B"] = torch.sign(m["F"] + m["G"] + m["H"])
            ctx.log("train", epoch, lab_loss=lab, dis_loss=dis, img_loss=img, txt_loss=txt)

    def _stage(self, train, ctx, name, epoch, steps, passes, lr_start, stop_on_rise=True) -> float:
        """The code's nested loop: ``steps`` learning-rate steps of passes//(step+1) passes each,
        stopping a step early once a pass's mean loss stops falling."""
        last = float("nan")
        for step in range(steps):
            lr = 10 ** -(lr_start + float(self.hparams["lr_decay"]) * (epoch + step))
            for group in self.opts[name].param_groups:
                group["lr"] = lr
            losses = []
            for _ in range(passes // (step + 1)):
                losses.append(self._pass(train, ctx, name))
                if stop_on_rise and len(losses) > 2 and losses[-1] >= losses[-2]:
                    break
            last = losses[-1] if losses else last
        return last

    def _pass(self, train, ctx, name) -> float:
        hp, m = self.hparams, self.memory
        for key, net in self.nets.items():
            net.train(key == name or (name == "dis" and key.startswith("dis")))
        total, count = 0.0, 0
        for batch in train.batches(int(hp["batch_size"]), shuffle=True, generator=ctx.generator):
            idx, labels = batch.positions, batch.labels
            if name == "dis":
                with torch.no_grad():
                    feats = {k: self._forward(k, batch, ctx)[1] for k in ("lab", "img", "txt")}
                logits = [self.nets["dis_img"](feats["img"]), self.nets["dis_txt"](feats["txt"]),
                          self.nets["dis_img"](feats["lab"]), self.nets["dis_txt"](feats["lab"])]
                targets = [0.0, 0.0, 1.0, 1.0]
                loss = sum(F.binary_cross_entropy_with_logits(l, torch.full_like(l, t)) for l, t in zip(logits, targets)) / 4
            else:
                hash_out, feature, label_pred = self._forward(name, batch, ctx)
                s = (train.labels @ labels.T > 0).float()  # N×b
                store = {"lab": ("H", "feat_L"), "img": ("F", "feat_I"), "txt": ("G", "feat_T")}[name]
                m[store[0]][idx], m[store[1]][idx] = hash_out.detach(), feature.detach()
                adversarial = None
                if name != "lab":
                    # see the module docstring: the official code feeds the discriminator a copy
                    seen = feature.detach() if hp["adversarial"] == "code" else feature
                    adversarial = self.nets["dis_img" if name == "img" else "dis_txt"](seen)
                loss = modality_loss(hp, hash_out, feature, label_pred, labels, s, m["feat_L"], m["H"], adversarial)
            self.opts[name].zero_grad(set_to_none=True)
            loss.backward()
            self.opts[name].step()
            total, count = total + float(loss.detach()) * len(idx), count + len(idx)
        return total / max(count, 1)

    def _forward(self, name, batch, ctx):
        if name == "lab":
            return self.nets["lab"](batch.labels)
        raw = self.normalise(batch.images, "image") if name == "img" else self.normalise(batch.texts, "text")
        with ctx.autocast():
            out = self.nets[name](raw)
        return tuple(o.float() for o in out)

    def encode_image(self, images):
        self.nets["img"].eval()
        return to_codes(self.nets["img"](self.normalise(images, "image"))[0].float())

    def encode_text(self, texts):
        self.nets["txt"].eval()
        return to_codes(self.nets["txt"](self.normalise(texts, "text"))[0].float())

    def state_dict(self) -> dict[str, Any]:
        return {"nets": self.nets.state_dict(), "opts": {k: o.state_dict() for k, o in self.opts.items()},
                "memory": self.memory, "inputs": self.normalise.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.nets.load_state_dict(state["nets"])
        for key, opt in self.opts.items():
            opt.load_state_dict(state["opts"][key])
        self.memory = {k: v.to(self.device) for k, v in state["memory"].items()}
        self.normalise.load_state_dict(state["inputs"], self.device)


SPEC = MethodSpec(
    name="ssah", description="Self-Supervised Adversarial Hashing: label network guides image/text nets, with discriminators",
    citation=Citation("Self-Supervised Adversarial Hashing Networks for Cross-Modal Retrieval", "CVPR", 2018,
                      "Chao Li, Cheng Deng, Ning Li, Wei Liu, Xinbo Gao, Dacheng Tao"),
    create=SSAH, defaults=DEFAULTS, presets=PRESETS, image_encoder="alexnet",
    # adversarial: "code" sends no gradient into ImgNet/TxtNet, as the official code; "paper" lets it flow
    choices={"adversarial": ("code", "paper"), "pairwise": ("likelihood", "code")})
