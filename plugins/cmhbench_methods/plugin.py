"""Built-in methods, registered through the same hook as third-party ones. Only the specs are
imported here (each method package's torch-free ``__init__``); an implementation is imported when a
run creates it."""

from __future__ import annotations

from cmhbench.plugins import hookimpl
from cmhbench.specs import MethodSpec
from cmhbench_methods import cmfh, cvh, daph, dchmt, dcmh, dsph, mith, scm, ssah


@hookimpl
def cmhbench_register_methods() -> list[MethodSpec]:
    return [dcmh.SPEC, ssah.SPEC, daph.SPEC, cvh.SPEC, *scm.SPECS, cmfh.SPEC, dchmt.SPEC, mith.SPEC, dsph.SPEC]
