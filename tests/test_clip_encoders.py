"""CLIP's towers (cmhbench.encoders.clip) against open_clip's own model, the weights files that
circulate (OpenAI's TorchScript archive, state dicts, open_clip checkpoints), and the tokenization
DCHMT and MITH write themselves."""

from __future__ import annotations

import gzip
import html
from functools import lru_cache
from importlib import resources

import numpy as np
import pytest
import torch

from cmhbench.encoders.clip import (ClipImageEncoder, ClipTextEncoder, build_clip, load_clip, read_state)
from cmhbench.errors import CmhbenchError


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return build_clip("clip-tiny").eval()


def test_towers_give_open_clips_features(tiny):
    """The image tower is open_clip's encode_image after CLIP's normalisation of uint8 pixels, and
    the text tower its encode_text, at the full 77-token context."""
    pixels = torch.randint(0, 256, (3, 32, 32, 3), dtype=torch.uint8)
    mean = torch.tensor((0.48145466, 0.4578275, 0.40821073)).view(1, 3, 1, 1)
    std = torch.tensor((0.26862954, 0.26130258, 0.27577711)).view(1, 3, 1, 1)
    reference = tiny.encode_image((pixels.permute(0, 3, 1, 2).float() / 255 - mean) / std)
    with torch.no_grad():
        assert torch.allclose(ClipImageEncoder(tiny.visual)(pixels), reference, atol=1e-5)
        tokens = torch.from_numpy(ClipTextEncoder.tokenize(["a red disc", "two green squares and a ring"]))
        assert torch.allclose(ClipTextEncoder(tiny)(tokens), tiny.encode_text(tokens.long()), atol=1e-5)
        # the class token of the token features is the image feature
        image = ClipImageEncoder(tiny.visual)
        assert torch.allclose(image.token_features(pixels)[:, 0], image(pixels), atol=1e-5)


# DCHMT's and MITH's own tokenization (dataset/base.py:_load_text, identical in both): CLIP's BPE with
# the start token, cut to max_words - 1 tokens, the end token appended, zero padding to max_words.
# Written here from their code with OpenAI's tokenizer rules, independently of open_clip's tokenize.
@lru_cache(maxsize=1)
def _bpe():
    import ftfy
    import regex

    with resources.files("open_clip").joinpath("bpe_simple_vocab_16e6.txt.gz").open("rb") as raw:
        merges = gzip.decompress(raw.read()).decode("utf-8").split("\n")[1:49152 - 256 - 2 + 1]
    merges = [tuple(m.split()) for m in merges]
    byte_encoder = _bytes_to_unicode()
    vocab = list(byte_encoder.values()) + [v + "</w>" for v in byte_encoder.values()]
    vocab += ["".join(m) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    encoder = {v: i for i, v in enumerate(vocab)}
    ranks = dict(zip(merges, range(len(merges)), strict=True))
    pattern = regex.compile(r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
                            regex.IGNORECASE)
    return ftfy, byte_encoder, encoder, ranks, pattern


def _bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs), strict=True))


def _word_bpe(token: str, ranks) -> list[str]:
    word = tuple(token[:-1]) + (token[-1] + "</w>",)
    while len(word) > 1:
        pairs = {(word[i], word[i + 1]) for i in range(len(word) - 1)}
        best = min(pairs, key=lambda pair: ranks.get(pair, float("inf")))
        if best not in ranks:
            break
        merged, i = [], 0
        while i < len(word):
            if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                merged.append(word[i] + word[i + 1])
                i += 2
            else:
                merged.append(word[i])
                i += 1
        word = tuple(merged)
    return list(word)


def dchmt_tokenize(text: str, max_words: int) -> list[int]:
    ftfy, byte_encoder, encoder, ranks, pattern = _bpe()
    text = " ".join(html.unescape(html.unescape(ftfy.fix_text(text))).strip().split()).lower()
    ids = []
    for token in pattern.findall(text):
        token = "".join(byte_encoder[b] for b in token.encode("utf-8"))
        ids += [encoder[piece] for piece in _word_bpe(token, ranks)]
    words = [encoder["<|startoftext|>"]] + ids
    words = words[:max_words - 1] + [encoder["<|endoftext|>"]]
    return words + [0] * (max_words - len(words))


def test_tokens_cut_to_a_methods_context_are_dchmts():
    """The runner tokenizes once at 77 tokens; a tower set to 32 cuts them to exactly what DCHMT's and
    MITH's loaders give, long captions (their end token kept) included."""
    captions = ["cigarette tattoos smoke red dress sunglasses", "explore", "",
                " ".join(["sky clouds sunset beach"] * 12), "Ünïcode & <b>html</b> 2024!"]
    tower = ClipTextEncoder(build_clip("clip-tiny"))
    tower.context_length = 32
    cut = tower.fit_context(torch.from_numpy(ClipTextEncoder.tokenize(captions))).numpy()
    assert cut.tolist() == [dchmt_tokenize(c, 32) for c in captions]


def test_weights_files_of_every_circulating_kind(tmp_path, tiny):
    """A state dict and one wrapped as {"state_dict": ...} with DataParallel's prefixes (and OpenAI's
    scalar entries) load to the same weights."""
    state = tiny.state_dict()
    torch.save(state, tmp_path / "plain.pt")
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "wrapped.pt")
    assert read_state(tmp_path / "wrapped.pt").keys() == state.keys()
    for name in ("plain.pt", "wrapped.pt"):
        loaded = load_clip("clip-tiny", str(tmp_path / name))
        assert all(torch.equal(loaded.state_dict()[k], v) for k, v in state.items())


def test_openai_archive_with_model_names_loads(tmp_path, tiny):
    """A TorchScript archive whose state dict has CLIP's own keys (what torch.jit.load gives of
    OpenAI's ViT-B-32.pt) plus its scalar entries loads as the model."""
    traced = torch.jit.trace(_Towers(tiny), (torch.zeros(1, 3, 32, 32), torch.zeros(1, 77, dtype=torch.long)),
                             check_trace=False)
    traced.save(str(tmp_path / "ViT-tiny.pt"))
    loaded = load_clip("clip-tiny", str(tmp_path / "ViT-tiny.pt"))
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in tiny.state_dict().items())


class _Towers(torch.nn.Module):
    """The model's parameters under their own names, traceable (CLIP's forward returns a dict)."""

    def __init__(self, model):
        super().__init__()
        for name, child in model.named_children():
            self.add_module(name, child)
        for name, parameter in model.named_parameters(recurse=False):
            self.register_parameter(name, parameter)
        self.model = [model]

    def forward(self, image, text):
        return self.model[0].encode_image(image), self.model[0].encode_text(text)


def test_bad_weights_are_one_line_each(tmp_path):
    with pytest.raises(CmhbenchError, match="does not exist.*clip.load"):
        load_clip("clip-vit-b32", str(tmp_path / "missing.pt"))
    with pytest.raises(CmhbenchError, match="no ImageNet weights"):
        load_clip("clip-vit-b32", "imagenet")
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(CmhbenchError, match="neither a TorchScript archive nor a state dict"):
        load_clip("clip-tiny", str(tmp_path / "junk.pt"))
    # a file of another size: the first differing key is named
    torch.manual_seed(0)
    state = build_clip("clip-tiny").state_dict()
    state["visual.conv1.weight"] = torch.zeros(64, 3, 16, 16)
    torch.save(state, tmp_path / "other.pt")
    with pytest.raises(CmhbenchError, match=r"'visual.conv1.weight' has shape \(64, 3, 16, 16\)"):
        load_clip("clip-tiny", str(tmp_path / "other.pt"))


def test_openai_weights_are_looked_up_where_clip_load_leaves_them(tmp_path, monkeypatch):
    monkeypatch.setenv("CMHBENCH_CLIP_DIR", str(tmp_path))
    with pytest.raises(CmhbenchError, match=r"ViT-B-32.pt does not exist"):
        load_clip("clip-vit-b32", "openai")


def test_padding_mask_leaves_the_end_token_alone(tiny):
    """MITH hides padding from every query: the end-of-text feature (causal: it sees no padding)
    is unchanged, while padding positions change."""
    tower = ClipTextEncoder(tiny)
    tower.context_length = 32
    tokens = torch.from_numpy(ClipTextEncoder.tokenize(["a red disc", "green"]))
    with torch.no_grad():
        plain, masked = tower.token_features(tokens), tower.token_features(tokens, mask_padding=True)
    ends = tower.fit_context(tokens).argmax(1)
    rows = torch.arange(2)
    assert torch.allclose(plain[rows, ends], masked[rows, ends], atol=1e-5)
    assert not torch.allclose(plain[0, -1], masked[0, -1])


@pytest.mark.slow
def test_a_vit_b32_fine_tuning_step_runs_on_the_cpu():
    """A full ViT-B/32 (random init: the shapes of OpenAI's file) takes one DCHMT training step on
    a batch of 224-px images and 32-token captions, every parameter receiving a gradient."""
    from types import SimpleNamespace

    from cmhbench_methods.dchmt.model import DCHMT
    from cmhbench.method import MethodSetup

    torch.manual_seed(0)
    model = build_clip("clip-vit-b32")
    setup = MethodSetup(bits=16, hparams={}, params=SimpleNamespace(**_dchmt_defaults()),
                        image_encoder=ClipImageEncoder(model.visual), text_encoder=ClipTextEncoder(model),
                        num_train=8, num_labels=4, text_dim=77, image_kind="pixels", text_kind="tokens",
                        device=torch.device("cpu"))
    method = DCHMT(setup)
    images = torch.randint(0, 256, (4, 224, 224, 3), dtype=torch.uint8)
    tokens = torch.from_numpy(ClipTextEncoder.tokenize(["a dog on grass", "sunset sea", "city night", "red car"]))
    before = [p.detach().clone() for p in method.image_net.parameters()]
    from cmhbench_methods.dchmt.losses import dchmt_loss

    labels = torch.eye(4)[[0, 1, 2, 0]]
    for group in method.optimizer.param_groups:
        group["total_steps"] = 10
    for _ in range(2):  # BertAdam's first step has rate 0
        loss = dchmt_loss(method.image_net(images).flatten(1), method.text_net(tokens).flatten(1),
                          (labels @ labels.T > 0).float(), 16, method.hp)
        method.optimizer.zero_grad()
        loss.backward()
        assert all(p.grad is not None for p in method.image_net.parameters())
        method.optimizer.step()
    assert np.isfinite(float(loss))
    assert any(not torch.equal(a, b) for a, b in zip(before, method.image_net.parameters(), strict=True))


def _dchmt_defaults() -> dict:
    from cmhbench_methods.dchmt import DCHMTParams
    from dataclasses import asdict

    return asdict(DCHMTParams())
