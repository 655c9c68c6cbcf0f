"""MITH: both CLIP towers fine-tuned under a hashing module with a global (teacher) and a token-level
(student) code per modality; codes are sign(global + local). Deviations from the release:
docs/methods/mith.md."""

from __future__ import annotations

import math

import torch

from cmhbench.errors import CmhbenchError
from cmhbench.method import HashingMethod, MethodSetup, to_codes
from cmhbench.toolkit import EpochLosses, cut_caption_context, similarity
from cmhbench.toolkit.bert_adam import BertAdam
from cmhbench_methods.mith.losses import mith_losses
from cmhbench_methods.mith.networks import HashingModule

EOT = 49407  # CLIP's end-of-text token: hidden from the text student with the padding


class MITH(HashingMethod):
    stateful = ("image_tower", "text_tower", "hashing", "optimizer", "banks")

    def __init__(self, setup: MethodSetup):
        super().__init__(setup)
        hp = self.hp
        self.image_tower, self.text_tower = setup.image_encoder.to(self.device), setup.text_encoder.to(self.device)
        cut_caption_context(self.text_tower, hp.max_words, "mith")
        if not 1 <= hp.top_k_label <= self.bits:
            raise CmhbenchError(f"mith: top_k_label={hp.top_k_label}; expected 1..{self.bits} (the code length)")
        self.hashing = HashingModule(self.text_tower.out_dim, self.bits, hp).to(self.device)
        # every training item's latest codes, N(0, 1) before it is first seen (the release's torch.randn)
        generator = torch.Generator().manual_seed(setup.seed)
        self.banks = {name: torch.randn(setup.num_train, self.bits, generator=generator).to(self.device)
                      for name in ("image_global", "text_global", "image_tokens", "text_tokens")}
        self.optimizer = BertAdam.for_fine_tuning(
            [*self.image_tower.parameters(), *self.text_tower.parameters()], self.hashing.parameters(), hp)

    def image_outputs(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        tokens = self.image_tower.token_features(images)
        return self.hashing.image(tokens[:, 0], tokens[:, 1:])

    def text_outputs(self, texts: torch.Tensor) -> dict[str, torch.Tensor]:
        tokens = self.text_tower.fit_context(texts)
        features = self.text_tower.token_features(tokens, mask_padding=True)
        eos = features[torch.arange(len(features), device=features.device), tokens.argmax(dim=1)]
        return self.hashing.text(eos, features, (tokens == 0) | (tokens == EOT))

    def fit(self, train, ctx) -> None:
        hp = self.hp
        self.optimizer.lay_schedule(math.ceil(len(train) / hp.batch_size), ctx.planned_epochs("train"))
        for epoch in ctx.epochs("train"):
            self.train_mode(True)
            losses = EpochLosses()
            for batch in train.batches(hp.batch_size, shuffle=True, generator=ctx.generator):
                with ctx.autocast():
                    image, text = self.image_outputs(batch.images), self.text_outputs(batch.texts)
                image = {key: value.float() for key, value in image.items()}
                text = {key: value.float() for key, value in text.items()}
                for name, value in (("image_global", image["global_hash"]), ("text_global", text["global_hash"]),
                                    ("image_tokens", image["token_hash"]), ("text_tokens", text["token_hash"])):
                    self.banks[name][batch.positions] = value.detach()
                mix = lambda side: hp.hyper_lambda * side["global_hash"] + (1 - hp.hyper_lambda) * side["token_hash"]  # noqa: E731
                target = torch.sign(mix(image).detach() + mix(text).detach())
                terms = mith_losses(image, text, self.banks, similarity(train.labels, batch.labels), target,
                                    self.bits, hp)
                loss = sum(terms.values())
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                losses.add(len(batch.positions), loss=loss, **terms)
            ctx.log("train", epoch, **losses.means(divisor=len(train)))

    def train_mode(self, on: bool) -> None:
        for module in (self.image_tower, self.text_tower, self.hashing):
            module.train(on)

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        self.train_mode(False)
        out = self.image_outputs(images)
        return to_codes((out["token_hash"] + out["global_hash"]).float())

    def encode_text(self, texts: torch.Tensor) -> torch.Tensor:
        self.train_mode(False)
        out = self.text_outputs(texts)
        return to_codes((out["token_hash"] + out["global_hash"]).float())
