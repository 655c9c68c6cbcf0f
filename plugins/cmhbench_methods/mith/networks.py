"""MITH's hashing module (DarrenZZhang/MM23-MITH hash_model.py), batch-first: tensors are N×L×D
where the release keeps L×N×D. D is CLIP's embedding width, K the code length."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from open_clip.transformer import QuickGELU, Transformer
from torch import nn


class ResidualMLPs(nn.Module):
    """x + Linear(4D→D)(Dropout(act(Linear(D→4D)(LayerNorm(x))))), ``layers`` times."""

    def __init__(self, width: int, layers: int, activation: str, dropout: float):
        super().__init__()
        act = nn.GELU if activation == "gelu" else nn.ReLU
        self.norms = nn.ModuleList(nn.LayerNorm(width) for _ in range(layers))
        self.mlps = nn.ModuleList(nn.Sequential(nn.Linear(width, 4 * width), act(), nn.Dropout(dropout),
                                                nn.Linear(4 * width, width)) for _ in range(layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for norm, mlp in zip(self.norms, self.mlps, strict=True):
            x = x + mlp(norm(x))
        return x


class GlobalConceptLearning(nn.Module):
    """The teacher, shared by both modalities: residual MLPs, then K concepts (a bias-free linear
    map) through tanh. Returns (the MLPs' output, the K concept scores)."""

    def __init__(self, width: int, bits: int, layers: int, activation: str, dropout: float):
        super().__init__()
        self.mlp = ResidualMLPs(width, layers, activation, dropout) if layers else nn.Identity()
        self.concepts = nn.Linear(width, bits, bias=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.mlp(x)
        return x, torch.tanh(self.concepts(x))


def aggregate_tokens(tokens: torch.Tensor, concept_scores: torch.Tensor, top_k: int,
                     padding: torch.Tensor | None = None) -> torch.Tensor:
    """Localized token aggregation: N×L×D tokens, N×L×K (detached) concept scores -> N×K×D.

    Each token keeps its positive scores among its top ``top_k`` concepts (ties at the k-th kept);
    each concept then takes a softmax over the tokens that kept it (a concept no token kept gets
    zero weight) and averages those tokens. ``padding`` (N×L, True to hide) hides positions."""
    scores = concept_scores.detach()
    if padding is not None:
        scores = scores.masked_fill(padding.unsqueeze(-1), float("-inf"))
    scores = torch.where(scores > 0, scores, float("-inf"))
    kth = scores.topk(top_k, dim=-1).values.amin(dim=-1, keepdim=True)
    scores = torch.where(scores >= kth, scores, float("-inf"))
    weights = torch.softmax(scores, dim=1).nan_to_num(nan=0.0)
    return torch.einsum("nlk,nld->nkd", weights, tokens)


def sinusoidal_positions(length: int, width: int) -> torch.Tensor:
    """The transformer paper's sin/cos table, divided by √width (as the release scales it)."""
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    frequencies = torch.exp(torch.arange(0, width, 2, dtype=torch.float32) * (-math.log(10000.0) / width))
    table = torch.zeros(length, width)
    table[:, 0::2] = torch.sin(position * frequencies)
    table[:, 1::2] = torch.cos(position * frequencies)
    return table / width ** 0.5


class BitwiseHashing(nn.Module):
    """K separate Linear(D, 1), the k-th on the k-th concept token, through tanh: N×K×D -> N×K.
    Stored as one K×D weight and K biases, each row initialised as nn.Linear(D, 1) would be."""

    def __init__(self, width: int, bits: int):
        super().__init__()
        bound = 1 / math.sqrt(width)
        self.weight = nn.Parameter(torch.empty(bits, width).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(bits).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(torch.einsum("nkd,kd->nk", x, self.weight) + self.bias)


class LocalConceptTransforming(nn.Module):
    """The student for one modality: aggregated concept tokens, positions, a CLIP-style transformer
    (pre-norm, QuickGELU, D/64 heads), bitwise hashing. Returns (N×K codes, N×K×D tokens)."""

    def __init__(self, width: int, bits: int, layers: int, top_k: int):
        super().__init__()
        self.top_k = top_k
        self.register_buffer("positions", sinusoidal_positions(bits, width), persistent=False)
        self.transformer = Transformer(width, layers, max(1, width // 64), act_layer=QuickGELU, batch_first=True)
        self.hashing = BitwiseHashing(width, bits)

    def forward(self, tokens, concept_scores, padding=None) -> tuple[torch.Tensor, torch.Tensor]:
        concepts = aggregate_tokens(tokens, concept_scores, self.top_k, padding) + self.positions
        concepts = self.transformer(concepts)
        return self.hashing(concepts), concepts


class HashingModule(nn.Module):
    """Everything MITH puts on CLIP: the shared teacher, one student per modality, and the concept
    projections the token-wise contrastive term compares."""

    def __init__(self, width: int, bits: int, hp):
        super().__init__()
        self.gcl = GlobalConceptLearning(width, bits, hp.res_mlp_layers, hp.activation, hp.dropout)
        self.lct_image = LocalConceptTransforming(width, bits, hp.transformer_layers, hp.top_k_label)
        self.lct_text = LocalConceptTransforming(width, bits, hp.transformer_layers, hp.top_k_label)
        self.image_concept_proj = nn.Linear(width, width)
        self.text_concept_proj = nn.Linear(width, width)

    def image(self, cls: torch.Tensor, patches: torch.Tensor) -> dict[str, torch.Tensor]:
        return self._side(cls, patches, None, self.lct_image, self.image_concept_proj)

    def text(self, eos: torch.Tensor, tokens: torch.Tensor, padding: torch.Tensor) -> dict[str, torch.Tensor]:
        return self._side(eos, tokens, padding, self.lct_text, self.text_concept_proj)

    def _side(self, global_token, tokens, padding, lct, proj) -> dict[str, torch.Tensor]:
        residual, global_hash = self.gcl(global_token)
        token_hash, concepts = lct(tokens, self.gcl(tokens)[1].detach(), padding)
        return {"global_hash": global_hash, "token_hash": token_hash,
                "global_feature": F.normalize(residual, dim=-1), "concepts": F.normalize(proj(concepts), dim=-1)}
