"""Built-in datasets, registered through the same hook as third-party ones."""

from __future__ import annotations

from cmhbench.plugins import hookimpl
from cmhbench.specs import DatasetSpec, Protocol
from cmhbench_datasets import standard, toy


@hookimpl
def cmhbench_register_datasets() -> list[DatasetSpec]:
    return [
        DatasetSpec(
            name="toy",
            description="synthetic multi-label shapes with bag-of-words texts (embedded default)",
            citation=None,
            # Images are synthetic: ImageNet weights neither help nor can be assumed offline, so the
            # toy protocol trains backbones from scratch, on a CPU-minute epoch budget with each
            # method's `quick` preset (see Protocol).
            protocol=Protocol(name="toy", version=1, bits=(32,), seeds=(0,), image_weights="none",
                              epochs=10, preset="quick"),
            open=toy.open_toy,
            option_defaults=toy.OPTION_DEFAULTS,
        ),
        *standard.SPECS,
    ]
