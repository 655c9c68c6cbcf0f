"""`clip-tiny` with ``--image-weights toy``: the toy protocol's stand-in for OpenAI's CLIP weights.

The CLIP-era methods fine-tune a CLIP that was pretrained contrastively on image–text pairs. From a
random start the tiny CLIP's image features barely differ between images (per-dimension spread 0.10
against a shared component of 0.72), so a short run cannot tell images apart: DCHMT's image codes in
the conformance check (50 items, 2 epochs) collapsed to one or two values. Over the toy's full 120
epochs a random start catches up (DCHMT 0.701 / 0.698 mAP from random, 0.705 / 0.681 pretrained). So, as toy-cnn is pretrained on disjoint toy
images for the CNN methods, the tiny CLIP is pretrained here with CLIP's own objective (symmetric
InfoNCE between the two towers, a learnt temperature from 1/0.07) on toy image–caption pairs drawn
from a generator seed no toy option uses by default, once, and cached under
``$CMHBENCH_HOME/clip-tiny/``, keyed by every pretraining setting.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from cmhbench.encoders.clip import ClipImageEncoder, ClipTextEncoder, build_clip, load_clip
from cmhbench_datasets import toy
from cmhbench_datasets.pretrained_cache import cache_path, load_or_pretrain

PRETRAINING = {"size": 2000, "image_size": 32, "vocabulary": 400, "seed": 1_000_003,
               "epochs": 10, "batch_size": 64, "lr": 1e-3, "init_seed": 0}
ARCHITECTURE_VERSION = "1"


def pretrained_path():
    return cache_path("clip-tiny", PRETRAINING, ARCHITECTURE_VERSION)


def pretrain() -> dict[str, torch.Tensor]:
    """CLIP's contrastive objective on disjoint toy pairs; the whole model's state (OpenAI's keys)."""
    p = PRETRAINING
    data = toy.generate(size=p["size"], image_size=p["image_size"], vocabulary=p["vocabulary"], seed=p["seed"])
    images = torch.from_numpy(data["images"])
    tokens = torch.from_numpy(ClipTextEncoder.tokenize(toy.captions_from_words(data["texts"])))
    with torch.random.fork_rng(devices=[]):  # leave the caller's random streams untouched
        torch.manual_seed(p["init_seed"])
        model = build_clip("clip-tiny")
        image_tower, text_tower = ClipImageEncoder(model.visual), ClipTextEncoder(model)
        optimiser = torch.optim.Adam(model.parameters(), lr=p["lr"])
        generator = torch.Generator().manual_seed(p["init_seed"])
        for _ in range(p["epochs"]):
            order = torch.randperm(len(images), generator=generator)
            for start in range(0, len(order), p["batch_size"]):
                batch = order[start:start + p["batch_size"]]
                image = F.normalize(image_tower(images[batch]), dim=-1)
                text = F.normalize(text_tower(tokens[batch]), dim=-1)
                logits = model.logit_scale.exp().clamp(max=100) * image @ text.T
                targets = torch.arange(len(batch))
                loss = (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                with torch.no_grad():  # CLIP clips its temperature at 100
                    model.logit_scale.clamp_(0, math.log(100))
    return model.state_dict()


def load_pretrained() -> dict[str, torch.Tensor]:
    return load_or_pretrain(pretrained_path(), pretrain)


def _model(weights: str):
    if weights != "toy":
        return load_clip("clip-tiny", weights)
    model = build_clip("clip-tiny")
    model.load_state_dict(load_pretrained())
    return model


def create_image(weights: str, input_dim: int | None = None) -> ClipImageEncoder:
    """``weights``: 'toy' (pretrained here, cached), 'none' (random) or a saved state dict."""
    return ClipImageEncoder(_model(weights).visual)


def create_text(weights: str, input_dim: int | None = None) -> ClipTextEncoder:
    return ClipTextEncoder(_model(weights))
