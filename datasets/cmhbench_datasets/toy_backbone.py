"""`toy-cnn` with ``--image-weights toy``: the toy protocol's stand-in for ImageNet pretraining.

DCMH, SSAH and DAPH are built for pretrained backbones: their published rates fine-tune CNN-F or
AlexNet from ImageNet weights and train only the heads in earnest. From a random start, measured on
toy (DCMH, 100 epochs), the convolutions did not move (their weight norms only shrank under weight
decay) and the image codes collapsed to 3-14 distinct values among 500 items. So the toy protocol
gives the image side what the real protocols give it: a backbone pretrained on other labelled
images. Here those are toy images drawn from a generator seed that no toy dataset option uses by
default (items disjoint from any evaluation set), trained once to predict which labels are present
(multi-label, like the real data's tags), and cached under ``$CMHBENCH_HOME/toy-cnn/``, keyed by
every pretraining setting, so every later run loads the same weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cmhbench.encoders.toycnn import OUT_DIM, ToyCnnEncoder, create_toy_cnn
from cmhbench_datasets import toy
from cmhbench_datasets.pretrained_cache import cache_path, load_or_pretrain

PRETRAINING = {"size": 2000, "image_size": 32, "vocabulary": 120, "seed": 1_000_003,
               "epochs": 12, "batch_size": 64, "lr": 1e-3, "init_seed": 0}
ARCHITECTURE_VERSION = "1"


def pretrained_path():
    return cache_path("toy-cnn", PRETRAINING, ARCHITECTURE_VERSION)


def pretrain() -> dict[str, torch.Tensor]:
    """Train toy-cnn + a linear label classifier on disjoint toy images; the encoder's state."""
    p = PRETRAINING
    data = toy.generate(size=p["size"], image_size=p["image_size"], vocabulary=p["vocabulary"], seed=p["seed"])
    images = torch.from_numpy(data["images"])
    labels = torch.from_numpy(data["labels"]).float()
    with torch.random.fork_rng(devices=[]):  # leave the caller's random streams untouched
        torch.manual_seed(p["init_seed"])
        encoder = ToyCnnEncoder()
        classifier = nn.Linear(OUT_DIM, labels.shape[1])
        params = list(encoder.parameters()) + list(classifier.parameters())
        optimiser = torch.optim.Adam(params, lr=p["lr"])
        generator = torch.Generator().manual_seed(p["init_seed"])
        for _ in range(p["epochs"]):
            order = torch.randperm(len(images), generator=generator)
            for start in range(0, len(order), p["batch_size"]):
                batch = order[start:start + p["batch_size"]]
                loss = F.binary_cross_entropy_with_logits(classifier(encoder(images[batch])), labels[batch])
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
    return encoder.state_dict()


def load_pretrained() -> dict[str, torch.Tensor]:
    return load_or_pretrain(pretrained_path(), pretrain)


def create(weights: str, input_dim: int | None = None) -> ToyCnnEncoder:
    """``weights``: 'toy' (pretrained here, cached), 'none' (random) or a saved state dict."""
    if weights == "toy":
        encoder = ToyCnnEncoder()
        encoder.load_state_dict(load_pretrained())
        return encoder
    return create_toy_cnn(weights, input_dim)
