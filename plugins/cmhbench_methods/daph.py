"""DAPH: Data-Aware Proxy Hashing for cross-modal retrieval (Tu et al., SIGIR 2023).

Two stages, following the authors' official PyTorch code (``rongchengtu1/DAPH``) where it and the
paper's notation differ:

**Stage 1, data-aware proxy network** (``DAPH_proxy_code.py``): an image proxy branch (backbone to
4096 -> 512 -> normalise, plus a label branch C -> 512 (ReLU, dropout 0.1) -> 512 -> normalise;
h_v = normalise(linear_K(v + l))), a text proxy branch (BoW -> 4096 (ReLU, dropout 0.5) -> 512 ->
normalise, its own label branch, same head) and a class proxy generator (one-hot -> 4096 (ReLU,
dropout 0.2) -> K -> normalise). Loss L1 + L3(image) + L3(text) + β·L_qtf + α·L2, γ = 20, σ = 0.2,
α = β = 0.2; SGD (lr 2e-4 for the branches, 1e-3 for the class generator, weight decay 1e-5),
batch 90, 80 epochs. Code-over-paper: the L3 denominator has an extra e⁰ per positive class; losses
are summed over the batch; the proxies are read out with the networks still in training mode
(dropout active), as the code does after its last epoch (``proxy_dropout=False`` reads them in
evaluation mode instead). The image branch's optimiser holds only the backbone, as the code's does
(its 4096 -> 512 layer, label branch and code layer keep their initialisation;
``proxy_train_image_heads=True`` trains them too). Bags of words go in raw, not centred.

**Stage 2, modality-specific hashing** (``DAPH.py``): image net = backbone to 4096 -> K -> tanh;
text net = BoW -> 4096 (ReLU, dropout 0.2) -> K (N(0, 0.3²) init) -> tanh. Anchors are the signs of
the training items' image and text proxies and of the class proxies. Loss L_same(image anchors) +
L_same(text anchors) + L_class + η(L_similar(image) + L_similar(text)), η = 1; SGD lr 0.005, weight
decay 1e-5, batch 128 (last partial batch dropped), 220 epochs, image and text networks trained in
alternating epochs.

Proxies are an artifact: they are cached under ``$CMHBENCH_HOME/daph-proxies/`` keyed by dataset,
split, encoders, bits, seed and every stage-1 setting, and reused by any later run with the same
key (``stage=hashing`` insists on them). Ablations: ``use_l1``, ``use_l2``, ``use_l3``, ``use_qtf``
(stage 1), ``use_same``, ``use_class``, ``use_similar`` (stage 2), and ``label_only_class_codes``
(class proxies learnt without any data term: no data awareness).

Run modes (``--set stage=...``): ``both`` (default: stage 1, or its cached proxies, then stage 2),
``proxies`` (stage 1 only: trains and saves the proxy codes, scores nothing: proxy codes exist only
for labelled training items), ``hashing`` (stage 2 from saved proxies; an error naming the missing
file when there are none) and ``joint`` (the paper's joint-training ablation: one loop in which each
epoch runs a proxy-network epoch while fewer than ``proxy_epochs`` have run, re-reads the proxy
codes, then trains both hashing networks against these moving anchors; nothing is cached, since the
proxies are not a fixed artifact). Feature inputs (identity image encoder) get the text branches' structure
and are standardised on the training split; their tanh hash layers are initialised so that the
pre-tanh scale is the official code's on bags of words (``common.tanh_head_std``: 0.027 instead of
0.3, which saturates tanh on dense standardised inputs). Precision: fp32, as the code.
See docs/methods/daph.md for the line-by-line audit against the official code.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cmhbench.errors import CmhbenchError
from cmhbench.fsutil import atomic_path, cache_home
from cmhbench.method import HashingMethod, MethodSetup
from cmhbench_methods import daph_losses as L
from cmhbench_methods.daph_spec import DEFAULTS, QUICK, SPEC, STAGE1, STAGE2, STAGES  # noqa: F401
from cmhbench_methods.common import InputNormaliser, TwoNetworkCodes, is_feature_encoder, tanh_head_std

_STAGE1_KEYS = sorted(STAGE1) + ["gamma", "sigma", "weight_decay"]


def _normalised_mlp(input_dim: int, dropout: float, output: int = 512, init_std: float | None = None) -> nn.Sequential:
    last = nn.Linear(4096, output)
    if init_std is not None:
        nn.init.normal_(last.weight, 0.0, init_std)
    return nn.Sequential(nn.Linear(input_dim, 4096), nn.ReLU(inplace=True), nn.Dropout(dropout), last)


class LabelBranch(nn.Module):
    """Multi-hot labels -> 512 (ReLU, dropout 0.1) -> 512, normalised."""

    def __init__(self, num_labels: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(num_labels, 512), nn.ReLU(inplace=True), nn.Dropout(0.1), nn.Linear(512, 512))

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.net(labels))


class ProxyBranch(nn.Module):
    """One modality's proxy generator: normalise(linear_K(normalise(f(x)) + label branch(y)))."""

    def __init__(self, body: nn.Module, num_labels: int, bits: int):
        super().__init__()
        self.body, self.labels, self.head = body, LabelBranch(num_labels), nn.Linear(512, bits)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.head(F.normalize(self.body(x)) + self.labels(labels)))


class ClassProxyGenerator(nn.Module):
    """One-hot class -> 4096 (ReLU, dropout 0.2) -> K, normalised; weights N(0, 0.2²) as the code."""

    def __init__(self, num_labels: int, bits: int):
        super().__init__()
        first, last = nn.Linear(num_labels, 4096), nn.Linear(4096, bits)
        nn.init.normal_(first.weight, 0.0, 0.2)
        nn.init.normal_(last.weight, 0.0, 0.2)
        self.net = nn.Sequential(first, nn.ReLU(inplace=True), nn.Dropout(0.2), last)

    def forward(self, onehot: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.net(onehot))


class DAPH(TwoNetworkCodes, HashingMethod):
    def __init__(self, setup: MethodSetup):
        super().__init__(setup)
        hp, bits, c, device = self.hparams, setup.bits, setup.num_labels, setup.device
        self.produces_codes = hp["stage"] != "proxies"
        feature_image = is_feature_encoder(setup.image_encoder)
        # the official code feeds raw bags of words (no centring); feature inputs are standardised
        self.normalise = InputNormaliser(device, feature_image, setup.text_kind == "features", centre_bow=False)
        image_dim, text_dim = setup.image_encoder.out_dim, setup.text_encoder.out_dim
        # stage 1: its own copy of the (untrained) backbone, as the code builds two AlexNets
        if feature_image:
            image_body = nn.Sequential(copy.deepcopy(setup.image_encoder), _normalised_mlp(image_dim, 0.5, init_std=0.3))
        else:
            image_body = nn.Sequential(copy.deepcopy(setup.image_encoder), nn.Linear(image_dim, 512))
        self.image_proxy = ProxyBranch(image_body, c, bits).to(device)
        # The official code's image-proxy optimiser holds only the backbone: the 4096->512 layer,
        # the label branch and the code layer stay at their initialisation for all of stage 1.
        # Feature inputs have no backbone, so there everything trains.
        if feature_image or hp["proxy_train_image_heads"]:
            image_proxy_params = list(self.image_proxy.parameters())
        else:
            image_proxy_params = list(self.image_proxy.body[0].parameters())
        self.text_proxy = ProxyBranch(nn.Sequential(setup.text_encoder, _normalised_mlp(text_dim, 0.5, init_std=0.3)), c, bits).to(device)
        self.class_proxy = ClassProxyGenerator(c, bits).to(device)
        wd = float(hp["weight_decay"])
        self.proxy_opts = {
            "image": torch.optim.SGD(image_proxy_params, lr=float(hp["proxy_lr"]), weight_decay=wd),
            "text": torch.optim.SGD(self.text_proxy.parameters(), lr=float(hp["proxy_lr"]), weight_decay=wd),
            "class": torch.optim.SGD(self.class_proxy.parameters(), lr=float(hp["class_lr"]), weight_decay=wd),
        }
        # stage 2
        if feature_image:
            self.image_net = nn.Sequential(copy.deepcopy(setup.image_encoder),
                                           _text_hash_net(image_dim, bits, tanh_head_std(image_dim))).to(device)
        else:
            self.image_net = nn.Sequential(setup.image_encoder, nn.Linear(image_dim, bits), nn.Tanh()).to(device)
        # the official N(0, 0.3²) hash layer on bags of words; on standardised features it would
        # saturate tanh (pre-tanh std ~8), so there the init keeps the official pre-tanh scale
        text_std = tanh_head_std(text_dim) if setup.text_kind == "features" else 0.3
        self.text_net = nn.Sequential(copy.deepcopy(setup.text_encoder), _text_hash_net(text_dim, bits, text_std)).to(device)
        self.hash_opts = {m: torch.optim.SGD(net.parameters(), lr=float(hp["lr"]), weight_decay=wd)
                          for m, net in (("image", self.image_net), ("text", self.text_net))}
        self.proxies: dict[str, torch.Tensor] | None = None
        self._bf16 = False
        self._proxy_epochs = int(hp["proxy_epochs"])  # fit() applies the run's epoch override

    # --- proxies: stage 1 and its cached artifact ---------------------------------------------
    def proxy_cache_key(self, epochs: int) -> str:
        settings = {k: self.hparams[k] for k in _STAGE1_KEYS}
        identity = {"dataset": self.setup.dataset_id, "bits": self.bits, "seed": self.setup.seed,
                    "stage1": settings, "epochs": epochs, **({"precision": "bf16"} if self._bf16 else {})}
        return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:24]

    def proxy_cache_path(self, epochs: int):
        return cache_home() / "daph-proxies" / f"{self.proxy_cache_key(epochs)}.pt"

    def artifacts(self) -> dict[str, str]:
        if self.hparams["stage"] == "joint":
            return {}
        return {"daph_proxies": str(self.proxy_cache_path(self._proxy_epochs))}

    def fit(self, train, ctx) -> None:
        hp = self.hparams
        self._bf16 = ctx.precision == "bf16"  # bf16 proxies are not reused by fp32 runs, nor the reverse
        self.normalise.fit(train)
        self._proxy_epochs = ctx.planned_epochs(int(hp["proxy_epochs"]), "proxies")
        if hp["stage"] == "joint":
            self._fit_jointly(train, ctx)
            return
        cache = self.proxy_cache_path(self._proxy_epochs)
        if self.proxies is None and cache.exists():
            self.proxies = {k: v.to(self.device) for k, v in torch.load(cache, map_location="cpu").items()}
            ctx.log("proxies", 0, reused=1.0)
        if self.proxies is None:
            if hp["stage"] == "hashing":
                raise CmhbenchError(f"--set stage=hashing needs saved proxy codes for these settings ({cache}); "
                                    "run with stage=both or stage=proxies first")
            for epoch in ctx.epochs(int(hp["proxy_epochs"]), stage="proxies"):
                ctx.log("proxies", epoch, loss=self._proxy_epoch(train, ctx))
            self.proxies = self._read_proxies(train)
            with atomic_path(cache) as tmp:
                torch.save({k: v.cpu() for k, v in self.proxies.items()}, tmp)
            ctx.save_checkpoint()
        if hp["stage"] == "proxies":
            return
        # the hashing stage draws from generators reseeded for it: the same codes whether the proxies
        # were trained just now or read from the cache
        for epoch in ctx.epochs(int(hp["epochs"]), stage="hashing", fresh_random_state=True):
            image_loss = self._hash_epoch(train, ctx, "image")
            text_loss = self._hash_epoch(train, ctx, "text")
            ctx.log("hashing", epoch, image_loss=image_loss, text_loss=text_loss)

    def _fit_jointly(self, train, ctx) -> None:
        for epoch in ctx.epochs(int(self.hparams["epochs"]), stage="joint"):
            losses = {"proxy_loss": self._proxy_epoch(train, ctx)} if epoch < self._proxy_epochs else {}
            self.proxies = self._read_proxies(train)
            losses["image_loss"] = self._hash_epoch(train, ctx, "image")
            losses["text_loss"] = self._hash_epoch(train, ctx, "text")
            ctx.log("joint", epoch, **losses)

    def _proxy_epoch(self, train, ctx) -> float:
        hp = self.hparams
        gamma, sigma = float(hp["gamma"]), float(hp["sigma"])
        for net in (self.image_proxy, self.text_proxy, self.class_proxy):
            net.train()
        eye = torch.eye(train.num_labels, device=self.device)
        total = 0.0
        for batch in train.batches(int(hp["proxy_batch_size"]), shuffle=True, generator=ctx.generator):
            labels = batch.labels
            with ctx.autocast():
                h_v = self.image_proxy(self.normalise(batch.images, "image"), labels).float()
            h_t = self.text_proxy(self.normalise(batch.texts, "text"), labels).float()
            p = self.class_proxy(eye).float()
            if hp["label_only_class_codes"]:
                loss = L.class_separation(p) + float(hp["alpha"]) * L.balance(p) + float(hp["beta"]) * L.quantisation(p)
                loss = loss + _data_terms(hp, h_v, h_t, p.detach(), labels, gamma, sigma)
            else:
                loss = (L.class_separation(p) if hp["use_l1"] else 0.0)
                loss = loss + _data_terms(hp, h_v, h_t, p, labels, gamma, sigma)
                if hp["use_qtf"]:
                    loss = loss + float(hp["beta"]) * L.quantisation(h_v, p, h_t)
                if hp["use_l2"]:
                    loss = loss + float(hp["alpha"]) * L.balance(p, h_t, h_v)
            for opt in self.proxy_opts.values():
                opt.zero_grad(set_to_none=True)
            loss.backward()
            for opt in self.proxy_opts.values():
                opt.step()
            total += float(loss.detach())
        return total / max(1, len(train))

    @torch.no_grad()
    def _read_proxies(self, train) -> dict[str, torch.Tensor]:
        mode = bool(self.hparams["proxy_dropout"])  # the code reads them in training mode
        for net in (self.image_proxy, self.text_proxy, self.class_proxy):
            net.train(mode)
        image, text = [], []
        for batch in train.batches(256):
            image.append(self.image_proxy(self.normalise(batch.images, "image"), batch.labels).float())
            text.append(self.text_proxy(self.normalise(batch.texts, "text"), batch.labels).float())
        eye = torch.eye(train.num_labels, device=self.device)
        return {"image": torch.sign(torch.cat(image)), "text": torch.sign(torch.cat(text)),
                "class": torch.sign(self.class_proxy(eye).float()), "labels": train.labels.clone()}

    # --- stage 2 -------------------------------------------------------------------------------
    def _hash_epoch(self, train, ctx, modality: str) -> float:
        hp, proxies = self.hparams, self.proxies
        gamma, sigma, eta = float(hp["gamma"]), float(hp["sigma"]), float(hp["eta"])
        net, opt = (self.image_net, self.hash_opts["image"]) if modality == "image" else (self.text_net, self.hash_opts["text"])
        (self.text_net if modality == "image" else self.image_net).eval()
        net.train()
        total, steps = 0.0, 0
        for batch in train.batches(int(hp["batch_size"]), shuffle=True, generator=ctx.generator,
                                   modalities=(modality,), drop_last=True):
            raw = batch.images if modality == "image" else batch.texts
            with ctx.autocast():
                out = net(self.normalise(raw, modality)).float()
            labels = batch.labels
            positive, negative, partial, weighted = L.select_anchors(labels, proxies["labels"], modality == "image")
            loss = out.sum() * 0.0
            for anchors in (proxies["image"], proxies["text"]):
                if hp["use_same"]:
                    loss = loss + L.anchor_softmax(out, anchors, positive, negative, sigma, gamma)
                if hp["use_similar"]:
                    loss = loss + eta * L.weighted_anchor_softmax(out, anchors, partial, weighted, negative, sigma, gamma)
            if hp["use_class"]:
                loss = loss + L.mean_anchor_softmax(out, proxies["class"], labels, 1 - labels, sigma, gamma)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total, steps = total + float(loss.detach()), steps + 1
        return total / max(steps, 1)

    # --- state ---------------------------------------------------------------------------------
    def _modules(self) -> dict[str, Any]:
        stage1 = {"image_proxy": self.image_proxy, "text_proxy": self.text_proxy, "class_proxy": self.class_proxy,
                  **{f"proxy_opt_{k}": v for k, v in self.proxy_opts.items()}}
        stage2 = {"image_net": self.image_net, "text_net": self.text_net,
                  **{f"hash_opt_{k}": v for k, v in self.hash_opts.items()}}
        if self.proxies is not None and self.hparams["stage"] != "joint":
            # stage 1 is over and its proxy codes are in the state: its networks (an AlexNet of
            # their own) would only double every stage-2 checkpoint
            return stage2
        return {**stage1, **stage2}

    def state_dict(self) -> dict[str, Any]:
        state = {name: m.state_dict() for name, m in self._modules().items()}
        state["proxies"] = self.proxies
        state["inputs"] = self.normalise.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.proxies = None if state["proxies"] is None else {k: v.to(self.device) for k, v in state["proxies"].items()}
        for name, module in self._modules().items():
            module.load_state_dict(state[name])
        self.normalise.load_state_dict(state["inputs"], self.device)


def _data_terms(hp, h_v, h_t, p, labels, gamma, sigma):
    if not hp["use_l3"]:
        return 0.0
    return L.proxy_softmax(h_v, p, labels, gamma, sigma) + L.proxy_softmax(h_t, p, labels, gamma, sigma)


def _text_hash_net(input_dim: int, bits: int, head_std: float) -> nn.Sequential:
    last = nn.Linear(4096, bits)
    nn.init.normal_(last.weight, 0.0, head_std)
    return nn.Sequential(nn.Linear(input_dim, 4096), nn.ReLU(inplace=True), nn.Dropout(0.2), last, nn.Tanh())
