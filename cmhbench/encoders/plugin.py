"""Built-in encoders, registered through the same hook as third-party ones (lazily: torch and
torchvision are imported when an encoder is created, not when encoders are listed)."""

from __future__ import annotations

from cmhbench.plugins import hookimpl
from cmhbench.specs import Citation, EncoderSpec, lazy


_CLIP = Citation("Learning Transferable Visual Models From Natural Language Supervision", "ICML", 2021,
                 "Radford et al.", url="https://arxiv.org/abs/2103.00020")
#: CLIP sizes: encoder name -> what it is (open_clip's configuration of the same name)
CLIP_SIZES = {"clip-vit-b32": "CLIP ViT-B/32 (512-d), as DCHMT and MITH fine-tune it",
              "clip-vit-b16": "CLIP ViT-B/16 (512-d)", "clip-vit-l14": "CLIP ViT-L/14 (768-d)"}


def clip_towers(sizes=None, image_create=None, text_create=None, weights: str = "openai, PATH or none"
                ) -> list[EncoderSpec]:
    """Each CLIP size's image tower and its text tower (NAME-text), built from one weights file:
    'none', 'openai' (~/.cache/clip) or a path (cmhbench.encoders.clip). The toy plugin registers
    clip-tiny through this too, with its own factories (its 'toy' weights)."""
    specs = []
    for name, what in (sizes or CLIP_SIZES).items():
        specs.append(EncoderSpec(name=name, description=f"{what}: image tower (--image-weights {weights})",
                                 modality="image", citation=_CLIP,
                                 create=image_create or lazy("cmhbench.encoders.clip:image_factory", name)))
        specs.append(EncoderSpec(name=f"{name}-text", description=f"{what}: text tower over tokenized captions",
                                 modality="text", citation=_CLIP, accepts=("captions",), tower_of=name,
                                 create=text_create or lazy("cmhbench.encoders.clip:text_factory", name)))
    return specs


@hookimpl
def cmhbench_register_encoders() -> list[EncoderSpec]:
    return [
        EncoderSpec(
            name="alexnet",
            description="AlexNet up to fc7 (4096-d); the stand-in for CNN-F/VGG-F",
            modality="image",
            create=lazy("cmhbench.encoders.backbones:factory", "alexnet"),
            citation=Citation("ImageNet Classification with Deep Convolutional Neural Networks",
                              "NeurIPS", 2012, "Krizhevsky, Sutskever, Hinton"),
        ),
        EncoderSpec(
            name="vgg19",
            description="VGG-19 up to fc7 (4096-d)",
            modality="image",
            create=lazy("cmhbench.encoders.backbones:factory", "vgg19"),
            citation=Citation("Very Deep Convolutional Networks for Large-Scale Image Recognition",
                              "ICLR", 2015, "Simonyan, Zisserman"),
        ),
        EncoderSpec(
            name="resnet50",
            description="ResNet-50 pooled features (2048-d)",
            modality="image",
            create=lazy("cmhbench.encoders.backbones:factory", "resnet50"),
            citation=Citation("Deep Residual Learning for Image Recognition", "CVPR", 2016,
                              "He, Zhang, Ren, Sun"),
        ),
        EncoderSpec(
            name="cnnf",
            description="CNN-F (VGG-F) up to fc7 (4096-d), as DCMH and SSAH use it; ImageNet weights "
                        "from MatConvNet's imagenet-vgg-f.mat (--image-weights PATH)",
            modality="image",
            create=lazy("cmhbench.encoders.cnnf:create_cnnf"),
            citation=Citation("Return of the Devil in the Details: Delving Deep into Convolutional Nets",
                              "BMVC", 2014, "Chatfield, Simonyan, Vedaldi, Zisserman"),
        ),
        *clip_towers(),
        EncoderSpec(
            name="identity",
            description="feature vectors and bag-of-words pass through unchanged",
            modality="any",
            create=lazy("cmhbench.encoders.identity:create_identity"),
            accepts=("features", "bow"),
        ),
    ]
