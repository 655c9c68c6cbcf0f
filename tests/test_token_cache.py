"""The caption token cache: made once per (captions, tokenizer), read back unchanged, remade when
damaged, never shared between other captions or another tokenizer."""

from __future__ import annotations

import numpy as np
import pytest

from cmhbench.encoders.clip import ClipTextEncoder, build_clip
from cmhbench.token_cache import cached_tokens, token_cache_path

CAPTIONS = ["a dog on the grass", "two cats", "sunset,beach,explore", "ünïcode captions too"]


@pytest.fixture
def encoder(tmp_path, monkeypatch):
    monkeypatch.setenv("CMHBENCH_HOME", str(tmp_path / "home"))
    return ClipTextEncoder(build_clip("clip-tiny"))


def test_tokens_are_made_once_then_read_back(encoder, monkeypatch):
    made = cached_tokens(CAPTIONS, encoder)
    np.testing.assert_array_equal(made, ClipTextEncoder.tokenize(CAPTIONS))
    path = token_cache_path(CAPTIONS, encoder.tokenizer_id)
    assert path.is_file() and not list(path.parent.glob("*.partial"))

    def refuse(captions):
        raise AssertionError("tokenized again although the cache holds the ids")

    monkeypatch.setattr(encoder, "tokenize", refuse)
    read = cached_tokens(list(CAPTIONS), encoder)
    np.testing.assert_array_equal(read, made)
    assert read.dtype == made.dtype


def test_other_captions_or_tokenizer_get_their_own_file(encoder):
    base = token_cache_path(CAPTIONS, encoder.tokenizer_id)
    assert token_cache_path(CAPTIONS[:-1] + ["ünïcode caption too"], encoder.tokenizer_id) != base
    assert token_cache_path(CAPTIONS[1:] + CAPTIONS[:1], encoder.tokenizer_id) != base  # order counts
    assert token_cache_path(CAPTIONS, encoder.tokenizer_id + " other") != base
    assert "open_clip" in encoder.tokenizer_id and "77" in encoder.tokenizer_id


@pytest.mark.parametrize("damage", [b"not an npy file", None])
def test_a_damaged_or_mismatched_file_is_remade(encoder, damage):
    path = token_cache_path(CAPTIONS, encoder.tokenizer_id)
    path.parent.mkdir(parents=True)
    if damage is None:  # a readable file of the wrong length
        np.save(path, np.zeros((2, 77), dtype=np.int32))
    else:
        path.write_bytes(damage)
    np.testing.assert_array_equal(cached_tokens(CAPTIONS, encoder), ClipTextEncoder.tokenize(CAPTIONS))
    np.testing.assert_array_equal(np.load(path), ClipTextEncoder.tokenize(CAPTIONS))


def test_an_encoder_without_tokenizer_id_is_not_cached(encoder, tmp_path):
    class Plain:
        @staticmethod
        def tokenize(captions):
            return np.arange(len(captions) * 3, dtype=np.int32).reshape(len(captions), 3)

    np.testing.assert_array_equal(cached_tokens(CAPTIONS, Plain()), Plain.tokenize(CAPTIONS))
    assert not (tmp_path / "home" / "tokens").exists()
