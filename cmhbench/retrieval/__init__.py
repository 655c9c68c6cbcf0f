"""Retrieval cost: top-k Hamming search over packed codes, and its timing against faiss's binary
indexes (`cmhbench retrieval-bench`)."""
