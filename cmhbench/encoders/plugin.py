"""Built-in encoders, registered through the same hook as third-party ones (lazily: torch and
torchvision are imported when an encoder is created, not when encoders are listed)."""

from __future__ import annotations

from cmhbench.plugins import hookimpl
from cmhbench.specs import Citation, EncoderSpec, lazy


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
        EncoderSpec(
            name="identity",
            description="feature vectors and bag-of-words pass through unchanged",
            modality="any",
            create=lazy("cmhbench.encoders.identity:create_identity"),
            accepts=("features", "bow"),
        ),
    ]
