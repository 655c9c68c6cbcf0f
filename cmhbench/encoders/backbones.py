"""torchvision image backbones, cut at their penultimate layer.

``alexnet`` and ``vgg19`` end at the second 4096-d fully connected layer (after its ReLU), where
DCMH, SSAH and DAPH attach their hash heads (AlexNet stands in for CNN-F/VGG-F, which torchvision
does not ship). ``resnet50`` ends at its 2048-d pooled feature.
"""

from __future__ import annotations

from typing import Callable

import torch
import torchvision
from torch import nn

from cmhbench.encoders.base import Encoder, check_pixels, load_state_file
from cmhbench.errors import CmhbenchError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MIN_SIDE = 63  # AlexNet's smallest input (its strided convolutions and pools reach zero below it)


class BackboneEncoder(Encoder):
    """uint8 N×H×W×3 pixels on the device -> normalised float N×3×H×W -> backbone features."""

    def __init__(self, body: nn.Module, out_dim: int):
        super().__init__()
        self.body = body
        self.out_dim = out_dim
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255.0)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255.0)

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        check_pixels(raw)
        if min(raw.shape[1:3]) < MIN_SIDE:
            raise CmhbenchError(
                f"image backbones need images of at least {MIN_SIDE}×{MIN_SIDE} pixels, got "
                f"{raw.shape[1]}×{raw.shape[2]}; use a larger --dataset-opt image_size or --image-encoder toy-cnn")
        pixels = raw.permute(0, 3, 1, 2).float()
        pixels = (pixels - self.mean) / self.std
        return self.body(pixels.contiguous(memory_format=torch.channels_last))


def _alexnet_body(model: torchvision.models.AlexNet) -> nn.Module:
    # classifier: Dropout, Linear(9216,4096), ReLU, Dropout, Linear(4096,4096), ReLU, Linear(->1000)
    return nn.Sequential(model.features, model.avgpool, nn.Flatten(1), *list(model.classifier)[:6])


def _vgg_body(model: torchvision.models.VGG) -> nn.Module:
    # classifier: Linear(25088,4096), ReLU, Dropout, Linear(4096,4096), ReLU, Dropout, Linear(->1000)
    return nn.Sequential(model.features, model.avgpool, nn.Flatten(1), *list(model.classifier)[:5])


def _resnet_body(model: torchvision.models.ResNet) -> nn.Module:
    model.fc = nn.Identity()
    return model


_BACKBONES: dict[str, tuple[Callable[..., nn.Module], str, Callable[[nn.Module], nn.Module], int]] = {
    "alexnet": (torchvision.models.alexnet, "AlexNet_Weights", _alexnet_body, 4096),
    "vgg19": (torchvision.models.vgg19, "VGG19_Weights", _vgg_body, 4096),
    "resnet50": (torchvision.models.resnet50, "ResNet50_Weights", _resnet_body, 2048),
}


def load_backbone(name: str, weights: str) -> BackboneEncoder:
    """Build a backbone with ``weights``: 'none', 'imagenet' (torchvision's published weights,
    downloaded on first use) or a path to a local state-dict file of the full torchvision model."""
    constructor, weights_enum, cut, out_dim = _BACKBONES[name]
    if weights in ("none", ""):
        model = constructor(weights=None)
    elif weights == "imagenet":
        enum = getattr(torchvision.models, weights_enum)
        try:
            model = constructor(weights=enum.DEFAULT)
        except Exception as exc:  # network errors surface as many types
            raise CmhbenchError(
                f"could not fetch torchvision's ImageNet weights for {name} ({type(exc).__name__}: {exc}); "
                f"download {enum.DEFAULT.url} yourself and pass its path as the weights "
                "(e.g. --image-weights /path/to/file.pth), or use --image-weights none"
            ) from None
    else:
        model = load_state_file(constructor(weights=None), weights, name, "'none', 'imagenet'")
    return BackboneEncoder(cut(model), out_dim)


def factory(name: str) -> Callable[[str, int | None], BackboneEncoder]:
    def create(weights: str, input_dim: int | None = None) -> BackboneEncoder:
        return load_backbone(name, weights)

    return create
