"""Token ids of a dataset's captions, made once per (captions, tokenizer) and cached.

Tokenizing is a Python loop over BPE merges: 4.3 s for MIRFLICKR-25K's 20,015 tag lists on a 2-core
CPU, so about 40 s for NUS-WIDE's 190,421, in every run of a CLIP method. The ids are the same in
every run, so they are written once to ``$CMHBENCH_HOME/tokens/KEY.npy``, atomically (a half-written
file is never visible under the final name). KEY hashes the captions themselves (`captions_digest`)
and the tokenizer's identity (the text encoder's ``tokenizer_id``: library, version, context), so
other captions or another tokenizer make another file. An encoder without ``tokenizer_id`` tokenizes
every time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cmhbench.data.digest import captions_digest
from cmhbench.fsutil import atomic_path, cache_home


def token_cache_path(captions: Sequence[str], tokenizer_id: str, captions_sha256: str | None = None) -> Path:
    """``captions_sha256``: their `captions_digest` where the caller has it already (a run's definition)."""
    digest = captions_sha256 or captions_digest(captions)
    key = hashlib.sha256(f"{digest}\n{tokenizer_id}".encode()).hexdigest()[:24]
    return cache_home() / "tokens" / f"{key}.npy"


def cached_tokens(captions: Sequence[str], text_encoder, captions_sha256: str | None = None) -> np.ndarray:
    """``text_encoder.tokenize(captions)``, read from the cache when an earlier run made it."""
    tokenizer_id = getattr(text_encoder, "tokenizer_id", None)
    if tokenizer_id is None:
        return text_encoder.tokenize(captions)
    path = token_cache_path(captions, tokenizer_id, captions_sha256)
    if path.exists():
        try:
            tokens = np.load(path, allow_pickle=False)
            if tokens.ndim == 2 and len(tokens) == len(captions):
                return tokens
        except (OSError, ValueError):
            pass  # unreadable: made again below, replacing it
    tokens = text_encoder.tokenize(captions)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, tokens, allow_pickle=False)
    return tokens
