"""Built-in methods, registered through the same hook as third-party ones. Only the specs are
imported here (torch-free modules); each method's implementation is imported when it is created."""

from __future__ import annotations

from cmhbench.plugins import hookimpl
from cmhbench.specs import MethodSpec
from cmhbench_methods import cmfh_spec, cvh_spec, daph_spec, dcmh_spec, scm_spec, ssah_spec


@hookimpl
def cmhbench_register_methods() -> list[MethodSpec]:
    return [dcmh_spec.SPEC, ssah_spec.SPEC, daph_spec.SPEC, cvh_spec.SPEC, *scm_spec.SPECS, cmfh_spec.SPEC]
