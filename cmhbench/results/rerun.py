"""The `cmhbench run` command line that defines a run, built from the fields that define it.

Torch-free: the runner records it in every result (``rerun``, from the request) and the leaderboard
puts it together again for result files written before that field existed.
"""

from __future__ import annotations

import shlex
from typing import Any, Mapping, Sequence


def rerun_command(*, method: str, dataset: str, bits: int, seed: int, epochs: int | None = None,
                  preset: str | None = None, hparams: Mapping[str, Any] | None = None,
                  dataset_options: Mapping[str, Any] | None = None, image_encoder: str | None = None,
                  image_weights: str | None = None, precision: str | None = None,
                  directions: Sequence[str] = ("i2t", "t2i")) -> str:
    """No paths but an --image-weights file, which is named as given."""
    parts = ["cmhbench", "run", "--method", method, "--dataset", dataset, "--bits", str(bits), "--seeds", str(seed)]
    if epochs is not None:
        parts += ["--epochs", str(epochs)]
    if preset:
        parts += ["--preset", str(preset)]
    for key, value in sorted(dict(hparams or {}).items()):
        parts += ["--set", f"{key}={value}"]
    for key, value in sorted(dict(dataset_options or {}).items()):
        parts += ["--dataset-opt", f"{key}={value}"]
    if image_encoder:
        parts += ["--image-encoder", str(image_encoder)]
    if image_weights:
        parts += ["--image-weights", str(image_weights)]
    if precision and precision != "auto":
        parts += ["--precision", precision]
    if tuple(directions) != ("i2t", "t2i"):
        parts += ["--directions", ",".join(directions)]
    return shlex.join(parts)
