"""Bit packing: ±1 codes and multi-hot labels as rows of uint64 words.

Packed, a 64-bit code is one machine word: Hamming distance is XOR + popcount and relevance is
AND != 0, eight to sixty-four times less memory traffic than the unpacked arrays.
"""

from __future__ import annotations

import numpy as np


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """Pack a 0/1 (or bool) items×width array into items×ceil(width/64) uint64 words."""
    bits = np.asarray(bits, dtype=bool)
    n, width = bits.shape
    words = -(-width // 64)
    padded = np.zeros((n, words * 64), dtype=bool)
    padded[:, :width] = bits
    as_bytes = np.packbits(padded, axis=1, bitorder="little")
    return np.ascontiguousarray(as_bytes).view(np.uint64).reshape(n, words)


def pack_codes(codes: np.ndarray) -> np.ndarray:
    """±1 codes -> packed words (bit set where the code is +1)."""
    return pack_bits(np.asarray(codes) > 0)


def unpack_codes(packed_bytes: np.ndarray, bits: int) -> np.ndarray:
    """Inverse of numpy.packbits(codes > 0, axis=1) (big-endian bit order, as numpy's default):
    the layout `cmhbench evaluate` accepts for packed code files."""
    unpacked = np.unpackbits(np.asarray(packed_bytes, dtype=np.uint8), axis=1, count=bits)
    return unpacked.astype(np.int8) * 2 - 1
