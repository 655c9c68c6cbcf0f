"""Built-in datasets, registered through the same hook as third-party ones."""

from __future__ import annotations

from cmhbench.encoders.plugin import clip_towers
from cmhbench.plugins import hookimpl
from cmhbench.specs import DatasetSpec, EncoderSpec, Protocol, lazy
from cmhbench_datasets import standard, toy

TOY_EPOCHS = 120  # where DCMH, the slowest to converge, has flattened (measured curves: README)


@hookimpl
def cmhbench_register_encoders() -> list[EncoderSpec]:
    # the toy's own backbone lives with the toy: its "toy" weights are pretrained on toy images
    return [EncoderSpec(
        name="toy-cnn",
        description="a small 3-layer CNN for the synthetic toy images (--image-weights toy: pretrained on "
                    "disjoint toy images, the toy protocol's stand-in for ImageNet)",
        modality="image",
        create=lazy("cmhbench_datasets.toy_backbone:create"),
    ), *clip_towers({"clip-tiny": "a two-layer 64-wide CLIP on 32-px images for the toy (--image-weights toy: "
                                  "pretrained contrastively on disjoint toy pairs, the toy's stand-in for OpenAI's)"},
                    lazy("cmhbench_datasets.toy_clip:create_image"), lazy("cmhbench_datasets.toy_clip:create_text"),
                    weights="toy, PATH or none")]


@hookimpl
def cmhbench_register_datasets() -> list[DatasetSpec]:
    return [
        DatasetSpec(
            name="toy",
            description="synthetic multi-label shapes with bag-of-words texts (embedded default)",
            citation=None,
            # v2: the deep methods fine-tune toy-cnn pretrained on disjoint toy images (the
            # toy's ImageNet; see toy_backbone), under an epoch budget in which every method's
            # mAP has flattened on a CPU, with each method's `quick` preset. v1 trained AlexNet
            # from scratch for 10 epochs and could not tell the methods apart (all near chance).
            protocol=Protocol(name="toy", version=2, bits=(32,), seeds=(0,), image_encoder="toy-cnn",
                              image_weights="toy", other_image_weights="none", epochs=TOY_EPOCHS, preset="quick",
                              clip_encoder="clip-tiny", clip_weights="toy"),
            open=toy.open_toy,
            option_defaults=toy.OPTION_DEFAULTS,
            label_pins=lazy("cmhbench_datasets.label_pins:toy_pins"),
        ),
        *standard.SPECS,
    ]
