"""The plugin module named by this distribution's `cmhbench` entry point."""

from cmhbench import hookimpl
from cmhbench.specs import Citation, MethodSpec, lazy

# the method's module imports torch: `lazy` imports it only when a run creates the method, so that
# listing methods stays fast
DEFAULTS = {"ridge": 1.0, "pool": 8}


@hookimpl
def cmhbench_register_methods():
    return [
        MethodSpec(
            name="ridge-codes",
            description="ridge regression from each modality to label-projected target codes",
            citation=Citation("Example plugin: ridge regression to label-projected codes",
                              "cmhbench examples", 2026),
            create=lazy("cmhbench_example.ridge_codes:RidgeCodes"),
            defaults=DEFAULTS,
            stages={},  # closed form: no epochs for the budget to scale
            input="direct",  # reads the stored pixels itself (average-pooled): no backbone is built
        )
    ]
