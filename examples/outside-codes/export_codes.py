"""Codes from a plain PyTorch script, submitted to cmhbench as outside codes.

Nothing here imports cmhbench: this is what a researcher does with the authors' own code. It reads
the fixed splits (and, for the toy set, the data) that cmhbench exports, trains a small two-tower
hashing model on the train split, encodes the query and retrieval splits and writes the codes file
`cmhbench submit` reads:

    cmhbench data splits toy --with-arrays -o toy.npz
    python export_codes.py toy.npz codes.npz
    cmhbench submit codes.npz --dataset toy --name two-tower-example --code-url https://example.org/code

The codes file: ``bits`` (a scalar), ``query_image``/``query_text``/``retrieval_image``/``retrieval_text``
packed with ``numpy.packbits(codes > 0, axis=1)`` (uint8, items × ceil(bits/8)), and ``query_ids``/
``retrieval_ids``, the dataset's item index of each row (any order; exactly the split's items).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from torch import nn


def tower(in_dim: int, bits: int) -> nn.Module:
    return nn.Sequential(nn.Linear(in_dim, 256), nn.ReLU(), nn.Linear(256, bits), nn.Tanh())


def train(images: torch.Tensor, texts: torch.Tensor, labels: torch.Tensor, bits: int, epochs: int, seed: int):
    """Both towers fit the label similarity with DCMH's pairwise likelihood (a pair shares a label
    with probability sigmoid(<a, b> / 2)), across and within the modalities."""
    torch.manual_seed(seed)
    image_net, text_net = tower(images.shape[1], bits), tower(texts.shape[1], bits)
    optimiser = torch.optim.Adam([*image_net.parameters(), *text_net.parameters()], lr=1e-3)
    similar = (labels @ labels.T > 0).float()  # 1 for pairs sharing a label
    for _ in range(epochs):
        for batch in torch.randperm(len(labels)).split(64):
            f, g = image_net(images[batch]), text_net(texts[batch])
            shared = similar[batch][:, batch]
            loss = sum((nn.functional.softplus(a @ b.T / 2) - shared * (a @ b.T / 2)).mean()
                       for a, b in ((f, g), (f, f), (g, g)))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return image_net.eval(), text_net.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", help="the file `cmhbench data splits NAME --with-arrays -o FILE` wrote")
    parser.add_argument("out", help="the codes file to write (.npz)")
    parser.add_argument("--bits", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    data = np.load(args.data)
    images = torch.from_numpy(data["images"].reshape(len(data["images"]), -1).astype(np.float32) / 255)
    texts = torch.from_numpy(data["texts"].astype(np.float32))
    labels = torch.from_numpy(data["labels"].astype(np.float32))
    train_ids = torch.from_numpy(data["train_ids"])
    # pixels standardised with the training split's statistics: raw [0, 1] pixels collapse the image tower
    mean, std = images[train_ids].mean(0), images[train_ids].std(0) + 1e-6
    images = (images - mean) / std
    image_net, text_net = train(images[train_ids], texts[train_ids], labels[train_ids], args.bits, args.epochs,
                                args.seed)
    codes = {"bits": np.int64(args.bits)}
    with torch.no_grad():
        for split in ("query", "retrieval"):
            ids = data[f"{split}_ids"]
            codes[f"{split}_ids"] = ids
            codes[f"{split}_image"] = np.packbits(image_net(images[ids]).numpy() > 0, axis=1)
            codes[f"{split}_text"] = np.packbits(text_net(texts[ids]).numpy() > 0, axis=1)
    np.savez(args.out, **codes)
    print(f"wrote {args.out}: {len(codes['query_ids'])} query and {len(codes['retrieval_ids'])} retrieval items, "
          f"{args.bits} bits")


if __name__ == "__main__":
    main()
