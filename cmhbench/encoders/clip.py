"""CLIP's image and text towers (open_clip's modules), built from a local weights file.

The CLIP-era hashing methods (DCHMT, MITH, DSPH, ...) fine-tune OpenAI's CLIP ViT-B/32, loading the
file ``clip.load`` downloads (``ViT-B-32.pt``, a TorchScript archive whose state dict defines the
model). This module reads that file, a plain OpenAI-format state dict, or an open_clip checkpoint
of the same architecture (its keys are OpenAI's), and nothing is downloaded: weights are 'none'
(open_clip's random initialisation), 'openai' (the file ``clip.load`` leaves in ``~/.cache/clip``,
or ``$CMHBENCH_CLIP_DIR``) or a path.

Architectures are open_clip's configurations, with QuickGELU (the activation OpenAI's weights were
trained with): ``clip-vit-b32`` (ViT-B-32), ``clip-vit-b16``, ``clip-vit-l14``, and ``clip-tiny``,
a two-layer 64-wide model with 32-px images for the toy dataset and the tests. A file is checked
against the named architecture key by key before it is loaded.

The text tower reads token ids: the runner tokenizes a dataset's captions once with `tokenize`
(open_clip's BPE tokenizer, whose vocabulary ships in the package) at CLIP's full 77-token context;
a method that reads fewer tokens (DCHMT and MITH read 32) sets ``context_length`` and the tower cuts
each sequence as the tokenizer would have (first tokens kept, end-of-text token last).
"""

from __future__ import annotations

import copy
import functools
import os
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cmhbench.encoders.base import Encoder, check_pixels
from cmhbench.errors import CmhbenchError

#: encoder name -> open_clip model configuration name (or the configuration itself)
TINY_CONFIG = {"embed_dim": 64,
               "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8},
               "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 1, "layers": 2}}
ARCHITECTURES: dict[str, str | dict[str, Any]] = {
    "clip-vit-b32": "ViT-B-32", "clip-vit-b16": "ViT-B-16", "clip-vit-l14": "ViT-L-14", "clip-tiny": TINY_CONFIG,
}
#: the files ``clip.load`` downloads, by architecture (what 'openai' weights resolve to)
OPENAI_FILES = {"clip-vit-b32": "ViT-B-32.pt", "clip-vit-b16": "ViT-B-16.pt", "clip-vit-l14": "ViT-L-14.pt"}
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
FULL_CONTEXT = 77
WHERE_WEIGHTS_COME_FROM = (
    "OpenAI's file is what DCHMT and MITH load: `clip.load('ViT-B/32')` downloads it to ~/.cache/clip/ "
    "(its address is in openai/CLIP clip/clip.py, _MODELS); an open_clip checkpoint of the same architecture "
    "(open_clip_pytorch_model.bin from the model's Hugging Face page) is accepted too")


def architecture_config(name: str) -> dict[str, Any]:
    import open_clip

    config = ARCHITECTURES[name]
    return copy.deepcopy(config if isinstance(config, dict) else open_clip.get_model_config(config))


def build_clip(name: str) -> nn.Module:
    """The architecture with open_clip's random initialisation, float32, QuickGELU."""
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    config = architecture_config(name)
    return CLIP(config["embed_dim"], CLIPVisionCfg(**config["vision_cfg"]), CLIPTextCfg(**config["text_cfg"]),
                quick_gelu=True).float()


def resolve_weights(name: str, weights: str) -> Path | None:
    """None for random weights, else the weights file (which must exist)."""
    if weights in ("none", ""):
        return None
    if weights == "imagenet":
        raise CmhbenchError(f"{name} has no ImageNet weights; give --image-weights openai (OpenAI's "
                            f"{OPENAI_FILES.get(name, 'file')} from ~/.cache/clip), a path to a CLIP weights file, "
                            f"or none. {WHERE_WEIGHTS_COME_FROM}")
    if weights == "openai":
        if name not in OPENAI_FILES:
            raise CmhbenchError(f"{name} has no OpenAI weights (it is cmhbench's own test size); use --image-weights "
                                "toy (pretrained on toy pairs), none, or a file saved from it")
        folder = Path(os.environ.get("CMHBENCH_CLIP_DIR", "~/.cache/clip")).expanduser()
        path = folder / OPENAI_FILES[name]
        if not path.is_file():
            raise CmhbenchError(f"--image-weights openai: {path} does not exist (set CMHBENCH_CLIP_DIR to the folder "
                                f"that holds {OPENAI_FILES[name]}, or pass the file's path). {WHERE_WEIGHTS_COME_FROM}")
        return path
    path = Path(weights).expanduser()
    if not path.is_file():
        raise CmhbenchError(f"CLIP weights file {path} does not exist. {WHERE_WEIGHTS_COME_FROM}")
    return path


def read_state(path: Path) -> dict[str, torch.Tensor]:
    """The state dict of a CLIP weights file: a TorchScript archive (OpenAI's), a state dict, or one
    wrapped as {"state_dict": ...} with DataParallel's "module." prefixes."""
    try:
        with warnings.catch_warnings():  # torch 2.9+ calls jit.load deprecated; OpenAI's files are archives
            warnings.simplefilter("ignore", FutureWarning)
            state = torch.jit.load(str(path), map_location="cpu").state_dict()
    except Exception:  # not a TorchScript archive: a pickled state dict
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise CmhbenchError(f"{path} is neither a TorchScript archive nor a state dict ({type(exc).__name__}: "
                                f"{str(exc).splitlines()[0][:200]}). {WHERE_WEIGHTS_COME_FROM}") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise CmhbenchError(f"{path} holds a {type(state).__name__}, not a CLIP state dict")
    state = {key.removeprefix("module."): value for key, value in state.items()}
    for key in ("input_resolution", "context_length", "vocab_size"):  # OpenAI's archives carry these scalars
        state.pop(key, None)
    return state


def check_state(state: dict[str, torch.Tensor], model: nn.Module, name: str, path: Path) -> None:
    """Refuse a file of another architecture, naming the first key that differs."""
    expected = model.state_dict()
    for key, tensor in expected.items():
        if key not in state:
            raise CmhbenchError(f"{path}: no '{key}'; it is not a {name} ({ARCHITECTURES[name] if isinstance(ARCHITECTURES[name], str) else 'tiny'}) CLIP state dict")
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise CmhbenchError(f"{path}: '{key}' has shape {tuple(state[key].shape)}, {name} needs {tuple(tensor.shape)}: "
                                "the file is another CLIP size; choose the encoder of its size (clip-vit-b32, clip-vit-b16, "
                                "clip-vit-l14)")
    extra = sorted(set(state) - set(expected))
    if extra:
        raise CmhbenchError(f"{path}: unexpected key '{extra[0]}' for {name}")


@functools.lru_cache(maxsize=2)
def _loaded(name: str, path: str, mtime_ns: int) -> nn.Module:
    model = build_clip(name)
    state = read_state(Path(path))
    check_state(state, model, name, Path(path))
    model.load_state_dict({key: value.float() for key, value in state.items()})
    return model


def load_clip(name: str, weights: str) -> nn.Module:
    """A fresh float32 CLIP model of architecture ``name`` with ``weights`` (see the module docstring).
    A file is read once per process; each call returns its own copy."""
    if name not in ARCHITECTURES:
        raise CmhbenchError(f"unknown CLIP architecture {name!r}; known: {', '.join(ARCHITECTURES)}")
    path = resolve_weights(name, weights)
    if path is None:
        return build_clip(name)
    return copy.deepcopy(_loaded(name, str(path.resolve()), path.stat().st_mtime_ns))


class ClipImageEncoder(Encoder):
    """uint8 N×H×W×3 pixels -> resized (bicubic) to the model's input size, OpenAI-normalised ->
    the vision transformer -> the projected class token (``out_dim``, 512 for ViT-B/32)."""

    def __init__(self, visual: nn.Module):
        super().__init__()
        self.visual = visual
        self.out_dim = int(visual.output_dim)
        size = visual.image_size
        self.image_size = tuple(size) if isinstance(size, (tuple, list)) else (int(size), int(size))
        self.register_buffer("mean", torch.tensor(OPENAI_MEAN).view(1, 3, 1, 1) * 255.0)
        self.register_buffer("std", torch.tensor(OPENAI_STD).view(1, 3, 1, 1) * 255.0)

    def pixels(self, raw: torch.Tensor) -> torch.Tensor:
        """What the vision transformer takes: CLIP's preprocessing of square canonical images."""
        check_pixels(raw)
        x = raw.permute(0, 3, 1, 2).float()
        if tuple(x.shape[-2:]) != self.image_size:
            x = F.interpolate(x, size=self.image_size, mode="bicubic", align_corners=False, antialias=True)
        return (x - self.mean) / self.std

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        return self.visual(self.pixels(raw))

    def token_features(self, raw: torch.Tensor) -> torch.Tensor:
        """N×(1 + patches)×out_dim: every token after the final layer norm, projected (the class
        token first; MITH reads the patch tokens)."""
        visual = self.visual
        x = visual.ln_post(visual.transformer(visual._embeds(self.pixels(raw))))
        return x @ visual.proj


class ClipTextEncoder(Encoder):
    """int token ids N×L (from `tokenize`) -> the text transformer (causal mask) -> the projected
    feature at each sequence's end-of-text token (``out_dim``)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.token_embedding = model.token_embedding
        self.positional_embedding = model.positional_embedding
        self.transformer = model.transformer
        self.ln_final = model.ln_final
        self.text_projection = model.text_projection
        self.register_buffer("attn_mask", model.attn_mask, persistent=False)
        self.out_dim = int(model.text_projection.shape[1])
        #: tokens read per caption (at most the model's 77); methods that read fewer set it
        self.context_length = int(model.positional_embedding.shape[0])
        #: what `tokenize` depends on, which keys the token cache (cmhbench.token_cache)
        self.tokenizer_id = f"open_clip {open_clip_version()} SimpleTokenizer context {FULL_CONTEXT}"

    @staticmethod
    def tokenize(captions: Sequence[str]) -> np.ndarray:
        """int32 N×77 token ids: start, BPE tokens, end (the last kept when cut), zero padding."""
        from open_clip.tokenizer import SimpleTokenizer

        return _tokenizer(SimpleTokenizer)(list(captions), context_length=FULL_CONTEXT).numpy().astype(np.int32)

    def fit_context(self, tokens: torch.Tensor) -> torch.Tensor:
        """Cut N×77 tokens to ``context_length`` exactly as the tokenizer cuts: keep the first
        tokens and put the end-of-text token (the largest id, so each row's argmax) last."""
        length = self.context_length
        if tokens.shape[1] <= length:
            return tokens
        ends = tokens.argmax(dim=1, keepdim=True)
        cut = tokens[:, :length].clone()
        # where, not a boolean index: picking the long rows would wait for the device every batch
        cut[:, -1] = torch.where(ends[:, 0] >= length, tokens.gather(1, ends)[:, 0], cut[:, -1])
        return cut

    def hidden_states(self, tokens: torch.Tensor, mask_padding: bool = False) -> torch.Tensor:
        """N×L×width: every position after the final layer norm, for tokens already cut to the
        context. Attention is causal; ``mask_padding`` also hides the padding (id 0) from every
        query, as MITH's text encoder does (id 0 is also BPE's "!", which it hides too)."""
        length = tokens.shape[1]
        x = self.token_embedding(tokens.long()) + self.positional_embedding[:length]
        mask = self.attn_mask[:length, :length].to(x.dtype)
        if mask_padding:
            heads = self.transformer.resblocks[0].attn.num_heads
            padding = torch.zeros(tokens.shape, dtype=x.dtype, device=x.device).masked_fill(tokens == 0, float("-inf"))
            mask = (mask.unsqueeze(0) + padding.unsqueeze(1)).repeat_interleave(heads, dim=0)
        return self.ln_final(self.transformer(x, attn_mask=mask))

    def token_features(self, tokens: torch.Tensor, mask_padding: bool = False) -> torch.Tensor:
        """N×L×out_dim: every position projected (MITH reads these); L is ``context_length``."""
        return self.hidden_states(self.fit_context(self._checked(tokens)), mask_padding) @ self.text_projection

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        tokens = self.fit_context(self._checked(tokens))
        features = self.hidden_states(tokens)
        ends = tokens.argmax(dim=1)
        return features[torch.arange(len(features), device=features.device), ends] @ self.text_projection

    @staticmethod
    def _checked(tokens: torch.Tensor) -> torch.Tensor:
        if tokens.dtype.is_floating_point:
            raise CmhbenchError(f"the CLIP text tower takes token ids, got {tokens.dtype} {tuple(tokens.shape)}: "
                                "the dataset needs captions (a bag of words cannot be read by it)")
        return tokens


@functools.lru_cache(maxsize=1)
def _tokenizer(cls: type) -> Any:
    return cls()


def open_clip_version() -> str:
    from importlib.metadata import version

    return version("open-clip-torch")


def image_factory(name: str):
    def create(weights: str, input_dim: int | None = None) -> ClipImageEncoder:
        return ClipImageEncoder(load_clip(name, weights).visual)
    return create


def text_factory(name: str):
    def create(weights: str, input_dim: int | None = None) -> ClipTextEncoder:
        return ClipTextEncoder(load_clip(name, weights))
    return create
