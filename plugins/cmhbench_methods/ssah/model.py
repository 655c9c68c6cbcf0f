"""SSAH: a label network (LabNet) learns codes and semantic features from the labels alone, and the
image and text networks learn to match them (α·pairwise on features + γ·pairwise on hash outputs +
β·quantisation + η·label prediction, + δ·adversarial), while two discriminators tell the
modalities' semantic features from LabNet's. Each epoch runs the code's nested loop: LabNet, the
discriminators, ImgNet, TxtNet, each for its learning-rate steps of passes, stopping a step early
once a pass's loss stops falling; then B = sign(F + G + H). Adam per network, rates
10^-(s + lr_decay·(epoch + step)). The audit, the LabNet health check and why the adversarial
term follows the code: docs/methods/ssah.md.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from cmhbench.evaluation import evaluate
from cmhbench.method import HashingMethod, MethodSetup, to_codes
from cmhbench.toolkit import EpochLosses, InputNormaliser, similarity, without_dropout
from cmhbench_methods.ssah.losses import discriminator_loss, modality_loss
from cmhbench_methods.ssah.networks import SEMANTIC, Discriminator, ImgNet, LabNet, TxtNet

#: below this rate an Adam step is under float32 resolution: such epochs are counted, not computed
FROZEN_LR = 1e-10
#: per network: the per-item memories its outputs are written to (hash outputs, semantic features),
#: and the discriminator that judges its features
MEMORY = {"lab": ("H", "feat_L"), "img": ("F", "feat_I"), "txt": ("G", "feat_T")}
JUDGE = {"img": "dis_img", "txt": "dis_txt"}


def image_body(setup: MethodSetup) -> tuple[nn.Module, int]:
    """The layers ImgNet puts its fc8 on, and their width: CNN-F (or AlexNet without dropout), or on
    feature inputs a learnt 4096-d layer standing in for the CNN (PyTorch's default init: N(0, 0.01²)
    would stack into near-constant outputs, measured)."""
    if "image" in setup.features_in:
        width = setup.image_encoder.out_dim
        return nn.Sequential(setup.image_encoder, nn.Linear(width, 4096), nn.ReLU()), 4096
    return without_dropout(setup.image_encoder), setup.image_encoder.out_dim


class SSAH(HashingMethod):
    stateful = ("nets", "opts", "memory", "normalise")

    def __init__(self, setup: MethodSetup):
        super().__init__(setup)
        hp, bits, c, n, device = self.hp, setup.bits, setup.num_labels, setup.num_train, setup.device
        # the code feeds raw bags of words (no centring); feature inputs are standardised
        self.normalise = InputNormaliser.for_setup(setup, centre_bow=False)
        body, body_width = image_body(setup)
        # a stand-in image layer learnt from scratch takes the text net's rate: at ImgNet's
        # fine-tuning rate (10^-4.5, decaying) it moved 1.6 % of its norm
        self.image_lr = hp.lr_txt if "image" in setup.features_in else hp.lr_img
        self.nets = nn.ModuleDict({
            "lab": LabNet(c, bits), "img": ImgNet(body, body_width, bits, c),
            "txt": TxtNet(setup.text_encoder, setup.text_encoder.out_dim, bits, c),
            "dis_img": Discriminator(hp.dis_dropout), "dis_txt": Discriminator(hp.dis_dropout),
        }).to(device)
        self.opts = {name: torch.optim.Adam(self.nets[name].parameters()) for name in ("lab", "img", "txt")}
        self.opts["dis"] = torch.optim.Adam([*self.nets["dis_img"].parameters(), *self.nets["dis_txt"].parameters()])
        # per-item outputs over the training set, random at the start as in the code
        g = torch.Generator().manual_seed(setup.seed)
        widths = {"F": bits, "G": bits, "H": bits, "feat_L": SEMANTIC, "feat_I": SEMANTIC, "feat_T": SEMANTIC}
        self.memory = {key: torch.randn(n, width, generator=g).to(device) for key, width in widths.items()}
        self.memory["B"] = torch.sign(self.memory["F"] + self.memory["G"] + self.memory["H"])
        self._labnet_health: dict[str, Any] = {}

    def fit(self, train, ctx) -> None:
        hp = self.hp
        self.normalise.fit(train)
        # the code decays the rates by epoch number; under a budget the decay stretches with it
        stretch = hp.epochs / ctx.planned_epochs("train")
        for epoch in ctx.epochs("train"):
            at = epoch * stretch
            if self.frozen(at):
                ctx.log("train", epoch, frozen=1.0)
                ctx.epoch_changed_nothing()
                continue
            lab = self.labnet_epoch(train, ctx, at)
            dis = self.stage(train, ctx, "dis", at, 2, hp.dis_passes, hp.lr_dis, stop_on_rise=False)
            img = self.stage(train, ctx, "img", at, 3, hp.img_passes, self.image_lr)
            txt = self.stage(train, ctx, "txt", at, 3, hp.txt_passes, hp.lr_txt)
            m = self.memory
            m["B"] = torch.sign(m["F"] + m["G"] + m["H"])
            ctx.log("train", epoch, lab_loss=lab, dis_loss=dis, img_loss=img, txt_loss=txt)
        self._labnet_health = self.labnet_health(train.labels)

    def labnet_epoch(self, train, ctx, epoch: float) -> float:
        """LabNet's part of one epoch (labels only): its learning-rate steps and passes."""
        return self.stage(train, ctx, "lab", epoch, 2, self.hp.lab_passes, self.hp.lr_lab)

    def frozen(self, epoch: float) -> bool:
        """True once every network's rate at this epoch, first step, is below FROZEN_LR (the code's
        rates fall by 10^-0.5 per epoch; its 500-epoch loop cannot even finish: docs/methods/ssah.md)."""
        starts = (self.hp.lr_lab, self.image_lr, self.hp.lr_txt, self.hp.lr_dis)
        return all(10 ** -(s + self.hp.lr_decay * epoch) < FROZEN_LR for s in starts)

    def stage(self, train, ctx, name, epoch, steps, passes, lr_start, stop_on_rise=True) -> float:
        """``steps`` learning-rate steps of passes//(step+1) passes each, a step stopping early once
        a pass's mean loss stops falling."""
        loss = self.discriminator_batch_loss if name == "dis" else self.network_batch_loss
        last = float("nan")
        for step in range(steps):
            for group in self.opts[name].param_groups:
                group["lr"] = 10 ** -(lr_start + self.hp.lr_decay * (epoch + step))
            losses = []
            for _ in range(passes // (step + 1)):
                losses.append(self.train_pass(train, ctx, name, loss))
                if stop_on_rise and len(losses) > 2 and losses[-1] >= losses[-2]:
                    break
            last = losses[-1] if losses else last
        return last

    def train_pass(self, train, ctx, name, batch_loss) -> float:
        """One pass over the training set in full batches (the code's ⌊N/128⌋ steps of 128 items)."""
        for key, net in self.nets.items():
            net.train(key == name or (name == "dis" and key.startswith("dis")))
        losses = EpochLosses()
        for batch in train.batches(self.hp.batch_size, shuffle=True, generator=ctx.generator, drop_last=True):
            loss = batch_loss(name, batch, train, ctx)
            self.opts[name].zero_grad(set_to_none=True)
            loss.backward()
            self.opts[name].step()
            losses.add(len(batch.positions), loss=loss)
        return losses.means().get("loss", 0.0)

    def network_batch_loss(self, name, batch, train, ctx) -> torch.Tensor:
        """LabNet's, ImgNet's or TxtNet's loss on a batch; its outputs go into the memories first."""
        hash_out, feature, label_pred = self.forward(name, batch, ctx)
        s = similarity(train.labels, batch.labels) * self.hp.sim_scale  # N×b
        hash_memory, feature_memory = MEMORY[name]
        self.memory[hash_memory][batch.positions] = hash_out.detach()
        self.memory[feature_memory][batch.positions] = feature.detach()
        adversarial = None
        if name in JUDGE:
            # the official code feeds the discriminator a copy of the features (docs/methods/ssah.md)
            seen = feature.detach() if self.hp.adversarial == "code" else feature
            adversarial = self.nets[JUDGE[name]](seen)
        return modality_loss(self.hp, hash_out, feature, label_pred, batch.labels, s, self.memory["feat_L"],
                             self.memory["H"], adversarial)

    def discriminator_batch_loss(self, name, batch, train, ctx) -> torch.Tensor:
        with torch.no_grad():
            features = {key: self.forward(key, batch, ctx)[1] for key in ("lab", "img", "txt")}
        return discriminator_loss(self.nets["dis_img"], self.nets["dis_txt"], features)

    def forward(self, name, batch, ctx):
        if name == "lab":
            return self.nets["lab"](batch.labels)
        raw = self.normalise(batch.images, "image") if name == "img" else self.normalise(batch.texts, "text")
        with ctx.autocast():
            out = self.nets[name](raw)
        return tuple(o.float() for o in out)

    @torch.no_grad()
    def labnet_health(self, labels: torch.Tensor) -> dict[str, Any]:
        """Does LabNet, the teacher of both modality networks, carry the labels? Its distinct
        single-class codes, the share of exact zeros in its semantic features, and its codes' label
        self-retrieval mAP on ``labels``."""
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
