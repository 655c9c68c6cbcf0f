"""SSAH: Self-Supervised Adversarial Hashing (Li et al., CVPR 2018).

Faithful to the paper and the authors' TensorFlow code (``lelan-li/SSAH``); the line-by-line
audit is docs/methods/ssah.md:

* **LabNet**: labels -> 4096 (ReLU, local response normalisation) -> 512 semantic feature (ReLU) ->
  hash (K, tanh) and label (C, sigmoid) heads;
* **ImgNet**: backbone to its 4096-d layer (CNN-F, the ``cnnf`` encoder with MatConvNet's
  imagenet-vgg-f.mat, as the code; AlexNet without its dropout layers with ``--image-encoder
  alexnet``) -> fc8 512 (ReLU, the semantic feature) -> hash and label heads;
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
  S_ij = ``sim_scale`` (1; the code's 0.999) when items share a label, else 0.
  ``pairwise="likelihood"`` (default) is the paper's negative log-likelihood
  −Σ(S_ijΘ_ij − log(1 + e^Θ_ij)); ``pairwise="code"`` is the official code's squared error between
  SΘ and log(1 + e^Θ). The squared terms are sums (``reduction="sum"``, the paper's Σ and Frobenius
  norms); the code's ``tf.nn.l2_loss`` halves them (``half_sum``); ``mean`` is offered too; the
  adversarial cross-entropy is a mean, as in the code. B is the sign of the batch's own outputs
  during training and sign(F + G + H) after each epoch, as in the code. Bags of words go in raw;
* **schedule** notes: each pass covers the training set once in full batches (the code draws
  ⌊N/128⌋ random batches of 128); a step stops early when a pass's mean training loss stops falling
  (the code monitors its full-set loss on even passes); one Adam per network (the code shares one
  Adam, so its bias correction counts every network's steps); epochs whose every rate is below
  ``FROZEN_LR`` are counted but not computed (see ``_frozen``);
* **schedule** (the code's nested loop): per epoch, LabNet for 2 learning-rate steps of up to 10 and
  5 passes, the discriminators for 2 steps of 1 pass, ImgNet and TxtNet for 3 steps of up to 15, 7
  and 5 passes; each stops early when a pass's loss stops falling. Adam; learning rates
  10^-(s + 0.5·i) for i = epoch + step (``lr_decay`` = 0.5), s = 2 (LabNet), 4.5 (ImgNet), 3.5 (TxtNet), 3
  (discriminators); batch 128; 500 epochs. Paper weights α = γ = 1, β = η = 1e-4, δ = 1 (default);
  the ``code`` preset is the official code: all-ones weights, ``pairwise="code"``, ``half_sum``,
  ``sim_scale`` 0.999. fp32 on every device, as the code.

**LabNet health.** Every result records ``diagnostics.labnet`` (``labnet_health``): distinct codes
of the single classes, the share of exact zeros in LabNet's semantic features, and its codes'
label self-retrieval mAP. On single-label data where most pairs are dissimilar (Wikipedia: 90 %)
the recipe drives the non-negative features to zero and classes share codes: the method does not
suit such data, and the check makes that visible in the result.

**Adversarial term: code over paper.** In the official code the discriminators, when ImgNet and
TxtNet are trained, read their semantic features from placeholders fed with numpy copies
(``I_fea_batch`` <- ``var['feat_I']``, ``T_fea_batch`` <- ``Fea_T``), so δ·adversarial adds a
constant to the loss and no gradient reaches ImgNet/TxtNet: the discriminators train, but do not
steer the generators. ``adversarial="code"`` (default) reproduces this (the term is computed on
detached features). ``adversarial="paper"`` lets the gradient flow as the paper describes; measured
on Wikipedia (10-d topic texts, 16-32 bits; with mean-reduced losses, before ``reduction`` existed)
it pulled the image and text features onto LabNet's near-zero features and every code collapsed
to one value (mAP 0.111 = the relevance rate).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cmhbench.evaluation import evaluate
from cmhbench.method import HashingMethod, MethodSetup, to_codes
from cmhbench_methods.ssah_spec import DEFAULTS, PRESETS, REDUCTION_NAMES, SPEC  # noqa: F401 (re-exported)
from cmhbench_methods.common import InputNormaliser, is_feature_encoder, normal_init, without_dropout

SEMANTIC = 512
POOL_LEVELS = (10, 6, 3, 2, 1)
FROZEN_LR = 1e-10


def lrn(x: torch.Tensor) -> torch.Tensor:
    """TensorFlow's local_response_normalization(depth_radius=2, bias=2, alpha=1e-4, beta=0.75)
    over the feature axis: x / (2 + 1e-4·Σ_{|c'−c|≤2} x²)^0.75.

    The window sum is five shifted slices of the zero-padded squares: torch's
    local_response_norm does the same through a 3-d pooling kernel, about twice as slow forward and
    backward on a 128×4096 batch (23 ms against 13 ms on one CPU thread)."""
    padded = F.pad(x * x, (2, 2))
    width = x.shape[-1]
    window = sum(padded[..., offset:offset + width] for offset in range(5))
    return x / (2.0 + 1e-4 * window) ** 0.75


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
        self.net = normal_init(nn.Sequential(nn.Linear(SEMANTIC, 512), nn.ReLU(), nn.Dropout(dropout),
                                             nn.Linear(512, 256), nn.ReLU(), nn.Dropout(dropout), nn.Linear(256, 1)))

    def forward(self, feature):
        return self.net(feature).squeeze(-1)


REDUCTIONS = dict(zip(REDUCTION_NAMES, (torch.sum, lambda x: 0.5 * x.sum(), torch.mean)))


def pairwise(anchor: torch.Tensor, batch: torch.Tensor, s: torch.Tensor, form: str, reduce=torch.sum) -> torch.Tensor:
    """Θ = ½·anchor·batchᵀ (N×b). 'likelihood': log(1+e^Θ) − SΘ (the paper's negative
    log-likelihood); 'code': (SΘ − log(1+e^Θ))², the official code's squared error; reduced over
    every pair by ``reduce``."""
    theta = 0.5 * anchor @ batch.T
    if form == "likelihood":
        return reduce(F.softplus(theta) - s * theta)
    if form == "code":
        return reduce((s * theta - F.softplus(theta)) ** 2)
    raise ValueError(f"pairwise={form!r}: expected 'likelihood' or 'code'")


def modality_loss(hp, hash_out, feature, label_pred, labels, s, label_features, h_all, adversarial_logits=None):
    """α·pairwise(features) + γ·pairwise(hash) + β·quantisation + η·label (+ δ·adversarial).

    The squared terms are reduced by ``reduction``: ``sum`` (the paper's Σ and Frobenius norms),
    ``half_sum`` (the code's ``tf.nn.l2_loss``) or ``mean``; the adversarial cross-entropy is a
    mean in every case, as in the code."""
    reduce = REDUCTIONS[hp["reduction"]]
    loss = (float(hp["alpha"]) * pairwise(label_features, feature, s, hp["pairwise"], reduce)
            + float(hp["gamma"]) * pairwise(h_all, hash_out, s, hp["pairwise"], reduce)
            + float(hp["beta"]) * reduce((torch.sign(hash_out).detach() - hash_out) ** 2)
            + float(hp["eta"]) * reduce((labels - label_pred) ** 2))
    if adversarial_logits is not None:
        loss = loss + float(hp["delta"]) * F.binary_cross_entropy_with_logits(
            adversarial_logits, torch.ones_like(adversarial_logits))
    return loss


class SSAH(HashingMethod):
    def __init__(self, setup: MethodSetup):
        super().__init__(setup)
        hp, bits, c, n, device = self.hparams, setup.bits, setup.num_labels, setup.num_train, setup.device
        # the code feeds raw bags of words (no centring); feature inputs are standardised
        self.normalise = InputNormaliser(device, is_feature_encoder(setup.image_encoder), setup.text_kind == "features",
                                         centre_bow=False)
        if is_feature_encoder(setup.image_encoder):
            # features: a learnt 4096-d layer stands in for the CNN (not in the code, so PyTorch's
            # default init: N(0, 0.01²) here would stack into near-constant outputs, measured)
            image_body = nn.Sequential(setup.image_encoder, nn.Linear(setup.image_encoder.out_dim, 4096), nn.ReLU())
            image_dim = 4096
            # ...and, learnt from scratch like the text net, it takes the text net's rate: at
            # ImgNet's fine-tuning rate (10^-4.5, decaying) that layer moved 1.6 % of its norm
            self._lr_img = float(hp["lr_txt"])
        else:
            self._lr_img = float(hp["lr_img"])
            image_dim = setup.image_encoder.out_dim
            image_body = without_dropout(setup.image_encoder)  # CNN-F has no dropout
        self.nets = nn.ModuleDict({
            "lab": LabNet(c, bits), "img": ImgNet(image_body, image_dim, bits, c),
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
        self._labnet_health: dict[str, Any] = {}

    def fit(self, train, ctx) -> None:
        self.normalise.fit(train)
        hp = self.hparams
        published = int(hp["epochs"])
        # the code decays the rates by epoch number; under a budget the decay stretches with it
        stretch = published / ctx.planned_epochs(published)
        for epoch in ctx.epochs(published, stage="train"):
            at = epoch * stretch
            if self._frozen(at):
                ctx.log("train", epoch, frozen=1.0)
                ctx.epoch_changed_nothing()
                continue
            lab = self.labnet_epoch(train, ctx, at)
            dis = self._stage(train, ctx, "dis", at, 2, int(hp["dis_passes"]), float(hp["lr_dis"]), stop_on_rise=False)
            img = self._stage(train, ctx, "img", at, 3, int(hp["img_passes"]), self._lr_img)
            txt = self._stage(train, ctx, "txt", at, 3, int(hp["txt_passes"]), float(hp["lr_txt"]))
            m = self.memory
            m["B"] = torch.sign(m["F"] + m["G"] + m["H"])
            ctx.log("train", epoch, lab_loss=lab, dis_loss=dis, img_loss=img, txt_loss=txt)
        self._labnet_health = self.labnet_health(train.labels)

    def labnet_epoch(self, train, ctx, epoch: float) -> float:
        """LabNet's part of one epoch (labels only): its learning-rate steps and passes."""
        return self._stage(train, ctx, "lab", epoch, 2, int(self.hparams["lab_passes"]), float(self.hparams["lr_lab"]))

    def _frozen(self, epoch: float) -> bool:
        """True once every network's rate at this epoch, first step, is below FROZEN_LR.

        The code's rates fall by 10^-0.5 per epoch (ImgNet's is 10^-9.5 by epoch 10), and its
        500-epoch loop cannot even finish (its rate lists end at epoch 189). An Adam step moves a
        weight by about the rate, and below 1e-10 that is under float32 resolution for any weight
        above ~1e-3 in size: such an epoch changes nothing, so it is counted but not computed."""
        hp = self.hparams
        starts = (float(hp["lr_lab"]), self._lr_img, float(hp["lr_txt"]), float(hp["lr_dis"]))
        return all(10 ** -(s + float(hp["lr_decay"]) * epoch) < FROZEN_LR for s in starts)

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
        # full batches only, as the code's ⌊N/128⌋ steps of 128 items
        for batch in train.batches(int(hp["batch_size"]), shuffle=True, generator=ctx.generator, drop_last=True):
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
                s = (train.labels @ labels.T > 0).float() * float(hp["sim_scale"])  # N×b
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

    @torch.no_grad()
    def labnet_health(self, labels: torch.Tensor) -> dict[str, Any]:
        """Does LabNet, the teacher of both modality networks, carry the labels? Its codes for each
        single class (distinct ones among C), the share of exact zeros in its semantic features
        over the given label rows, and its codes' label self-retrieval mAP on those rows. On
        single-label data where most pairs are dissimilar (Wikipedia: 90 %) the paper's recipe
        drives the non-negative features to zero and classes share one code."""
        net = self.nets["lab"]
        net.eval()
        hash_out, feature, _ = net(labels)
        class_codes = to_codes(net(torch.eye(labels.shape[1], device=labels.device))[0])
        codes = to_codes(hash_out).cpu().numpy()
        plain = labels.cpu().numpy().astype("uint8")
        self_map = evaluate(codes, codes, plain, plain, map_at=[], precision_at=[], device="cpu")["map"]
        return {"distinct_class_codes": int(torch.unique(class_codes, dim=0).shape[0]),
                "classes": int(labels.shape[1]),
                "zero_feature_fraction": float((feature == 0).float().mean()),
                "label_self_map": float(self_map)}

    def diagnostics(self) -> dict[str, Any]:
        return {"labnet": self._labnet_health} if self._labnet_health else {}

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
