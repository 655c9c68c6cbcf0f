"""The plugin module named by this distribution's `cmhbench` entry point."""

from dataclasses import dataclass

from cmhbench import hookimpl
from cmhbench.specs import Citation, MethodSpec, lazy


@dataclass(frozen=True)
class RidgeCodesParams:
    ridge: float = 1.0  # λ of the ridge regression
    pool: int = 8  # pixels are average-pooled to pool×pool×3


# the method's module imports torch: `lazy` imports it only when a run creates the method, so that
# listing methods stays fast


@hookimpl
def cmhbench_register_methods():
    return [
        MethodSpec(
            name="ridge-codes",
            description="ridge regression from each modality to label-projected target codes",
            citation=Citation("Example plugin: ridge regression to label-projected codes",
                              "cmhbench examples", 2026),
            create=lazy("cmhbench_example.ridge_codes:RidgeCodes"),
            params=RidgeCodesParams,
            stages={},  # closed form: no epochs for the budget to scale
            input="direct",  # reads the stored pixels itself (average-pooled): no backbone is built
        )
    ]
