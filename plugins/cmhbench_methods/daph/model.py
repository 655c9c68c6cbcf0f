"""DAPH: data-aware proxies (stage 1), then modality-specific hash nets trained against them (stage 2).

Stage 1 learns an image and a text proxy branch and a class proxy generator (L1 + L3 + β·L_qtf +
α·L2, SGD, 80 epochs) and reads out the signs of every training item's proxies and of the class
proxies. Stage 2 trains the image and text hash nets in alternating epochs against those anchors
(L_same + L_class + η·L_similar, SGD, 220 epochs). Proxies are an artifact cached under
``$CMHBENCH_HOME/daph-proxies/`` by everything they depend on and reused by later runs. The run
modes (``--set stage=both|proxies|hashing|joint``) and every code-over-paper choice:
docs/methods/daph.md.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import torch
from torch import nn

from cmhbench.errors import CmhbenchError
from cmhbench.fsutil import atomic_path, cache_home
from cmhbench.method import HashingMethod, MethodSetup
from cmhbench.toolkit import EpochLosses, InputNormaliser, TwoNetworkCodes
from cmhbench_methods.daph import STAGE1_KEYS
from cmhbench_methods.daph import losses as L
from cmhbench_methods.daph.networks import (ClassProxyGenerator, ProxyBranch, image_hash_net, image_proxy_body,
                                            normalised_mlp, text_hash_net, text_head_std)

STAGE1_NETS = ("image_proxy", "text_proxy", "class_proxy", "proxy_opts")
STAGE2_NETS = ("image_net", "text_net", "hash_opts")


class DAPH(TwoNetworkCodes, HashingMethod):
    def __init__(self, setup: MethodSetup):
        super().__init__(setup)
        hp, bits, c, device = self.hp, setup.bits, setup.num_labels, setup.device
        self.produces_codes = hp.stage != "proxies"
        # the official code feeds raw bags of words (no centring); feature inputs are standardised
        self.normalise = InputNormaliser.for_setup(setup, centre_bow=False)
        # stage 1
        self.image_proxy = ProxyBranch(image_proxy_body(setup), c, bits).to(device)
        # the code's image-proxy optimiser holds only the backbone (feature inputs have none: all trains)
        if "image" in setup.features_in or hp.proxy_train_image_heads:
            image_proxy_params = list(self.image_proxy.parameters())
        else:
            image_proxy_params = list(self.image_proxy.body[0].parameters())
        text_body = nn.Sequential(setup.text_encoder, normalised_mlp(setup.text_encoder.out_dim, 0.5, init_std=0.3))
        self.text_proxy = ProxyBranch(text_body, c, bits).to(device)
        self.class_proxy = ClassProxyGenerator(c, bits).to(device)
        sgd = {"weight_decay": hp.weight_decay}
        self.proxy_opts = {"image": torch.optim.SGD(image_proxy_params, lr=hp.proxy_lr, **sgd),
                           "text": torch.optim.SGD(self.text_proxy.parameters(), lr=hp.proxy_lr, **sgd),
                           "class": torch.optim.SGD(self.class_proxy.parameters(), lr=hp.class_lr, **sgd)}
        # stage 2
        self.image_net = image_hash_net(setup).to(device)
        self.text_net = nn.Sequential(copy.deepcopy(setup.text_encoder),
                                      text_hash_net(setup.text_encoder.out_dim, bits, text_head_std(setup))).to(device)
        self.hash_opts = {m: torch.optim.SGD(net.parameters(), lr=hp.lr, **sgd)
                          for m, net in (("image", self.image_net), ("text", self.text_net))}
        self.proxies: dict[str, torch.Tensor] | None = None
        self._bf16 = False
        self._proxy_epochs = hp.proxy_epochs  # fit() applies the run's epoch budget

    @property
    def stateful(self) -> tuple[str, ...]:
        # once stage 1 is over its proxy codes are the state: its networks (an AlexNet of their
        # own) would only double every stage-2 checkpoint
        if self.proxies is not None and self.hp.stage != "joint":
            return ("proxies", "normalise", *STAGE2_NETS)
        return ("proxies", "normalise", *STAGE1_NETS, *STAGE2_NETS)

    def fit(self, train, ctx) -> None:
        self._bf16 = ctx.precision == "bf16"  # bf16 proxies are not reused by fp32 runs, nor the reverse
        self._proxy_epochs = ctx.planned_epochs("proxies")
        self.normalise.fit(train)
        if self.hp.stage == "joint":
            self.fit_jointly(train, ctx)
            return
        if self.proxies is None:
            self.proxies = self.cached_proxies(ctx)
        if self.proxies is None:
            self.train_proxies(train, ctx)
        if self.hp.stage != "proxies":
            self.train_hashing(train, ctx)

    # --- stage 1 --------------------------------------------------------------------------------
    def train_proxies(self, train, ctx) -> None:
        """Stage 1; its last epoch reads the proxies out and caches them, so its checkpoint holds them."""
        for epoch in ctx.epochs("proxies"):
            ctx.log("proxies", epoch, loss=self.proxy_epoch(train, ctx))
            if epoch == self._proxy_epochs - 1:
                self.proxies = self.read_proxies(train)
                with atomic_path(self.proxy_cache_path()) as tmp:
                    torch.save({k: v.cpu() for k, v in self.proxies.items()}, tmp)

    def proxy_epoch(self, train, ctx) -> float:
        for net in (self.image_proxy, self.text_proxy, self.class_proxy):
            net.train()
        eye = torch.eye(train.num_labels, device=self.device)
        losses = EpochLosses()
        for batch in train.batches(self.hp.proxy_batch_size, shuffle=True, generator=ctx.generator):
            with ctx.autocast():
                h_v = self.image_proxy(self.normalise(batch.images, "image"), batch.labels).float()
            h_t = self.text_proxy(self.normalise(batch.texts, "text"), batch.labels).float()
            loss = L.proxy_objective(self.hp, h_v, h_t, self.class_proxy(eye).float(), batch.labels)
            for opt in self.proxy_opts.values():
                opt.zero_grad(set_to_none=True)
            loss.backward()
            for opt in self.proxy_opts.values():
                opt.step()
            losses.add(loss=loss)
        return losses.means(divisor=len(train)).get("loss", 0.0)

    @torch.no_grad()
    def read_proxies(self, train) -> dict[str, torch.Tensor]:
        """The signs of every training item's image and text proxies and of the class proxies."""
        for net in (self.image_proxy, self.text_proxy, self.class_proxy):
            net.train(self.hp.proxy_dropout)  # the code reads them in training mode
        image, text = [], []
        for batch in train.batches(256):
            image.append(self.image_proxy(self.normalise(batch.images, "image"), batch.labels).float())
            text.append(self.text_proxy(self.normalise(batch.texts, "text"), batch.labels).float())
        eye = torch.eye(train.num_labels, device=self.device)
        return {"image": torch.sign(torch.cat(image)), "text": torch.sign(torch.cat(text)),
                "class": torch.sign(self.class_proxy(eye).float()), "labels": train.labels.clone()}

    # --- stage 2 --------------------------------------------------------------------------------
    def train_hashing(self, train, ctx) -> None:
        # generators reseeded for this stage: the same codes whether the proxies were trained just
        # now or read from the cache
        for epoch in ctx.epochs("hashing", fresh_random_state=True):
            image_loss = self.hash_epoch(train, ctx, "image")
            text_loss = self.hash_epoch(train, ctx, "text")
            ctx.log("hashing", epoch, image_loss=image_loss, text_loss=text_loss)

    def hash_epoch(self, train, ctx, modality: str) -> float:
        image_epoch = modality == "image"
        net, other = (self.image_net, self.text_net) if image_epoch else (self.text_net, self.image_net)
        opt = self.hash_opts[modality]
        other.eval()
        net.train()
        losses = EpochLosses()
        for batch in train.batches(self.hp.batch_size, shuffle=True, generator=ctx.generator,
                                   modalities=(modality,), drop_last=True):
            with ctx.autocast():
                out = net(self.normalise(batch.images if image_epoch else batch.texts, modality)).float()
            loss = L.hashing_objective(self.hp, out, batch.labels, self.proxies, image_epoch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.add(loss=loss)
        return losses.means().get("loss", 0.0)

    # --- the joint-training ablation -------------------------------------------------------------
    def fit_jointly(self, train, ctx) -> None:
        """One loop: a proxy epoch while fewer than ``proxy_epochs`` have run, a fresh read-out, then
        both hash nets against these moving anchors; nothing is cached."""
        for epoch in ctx.epochs("joint"):
            losses = {"proxy_loss": self.proxy_epoch(train, ctx)} if epoch < self._proxy_epochs else {}
            self.proxies = self.read_proxies(train)
            losses["image_loss"] = self.hash_epoch(train, ctx, "image")
            losses["text_loss"] = self.hash_epoch(train, ctx, "text")
            ctx.log("joint", epoch, **losses)

    # --- the proxy cache -------------------------------------------------------------------------
    def cached_proxies(self, ctx) -> dict[str, torch.Tensor] | None:
        path = self.proxy_cache_path()
        if path.exists():
            ctx.log("proxies", 0, reused=1.0)
            return {k: v.to(self.device) for k, v in torch.load(path, map_location="cpu").items()}
        if self.hp.stage == "hashing":
            raise CmhbenchError(f"--set stage=hashing needs saved proxy codes for these settings ({path}); "
                                "run with stage=both or stage=proxies first")
        return None

    def proxy_cache_path(self) -> Path:
        identity = {"dataset": self.setup.dataset_id, "bits": self.bits, "seed": self.setup.seed,
                    "stage1": {k: self.hparams[k] for k in STAGE1_KEYS},
                    "epochs": self._proxy_epochs, **({"precision": "bf16"} if self._bf16 else {})}
        key = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:24]
        return cache_home() / "daph-proxies" / f"{key}.pt"

    def artifacts(self) -> dict[str, str]:
        return {} if self.hp.stage == "joint" else {"daph_proxies": str(self.proxy_cache_path())}
