"""Encoding for the common two-network shape."""

from __future__ import annotations

import torch

from cmhbench.method import to_codes


class TwoNetworkCodes:
    """``encode_image``/``encode_text`` for methods with ``image_net``, ``text_net`` (ending in the
    hash layer) and an `InputNormaliser` called ``normalise``."""

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        self.image_net.eval()
        return to_codes(self.image_net(self.normalise(images, "image")).float())

    def encode_text(self, texts: torch.Tensor) -> torch.Tensor:
        self.text_net.eval()
        return to_codes(self.text_net(self.normalise(texts, "text")).float())
