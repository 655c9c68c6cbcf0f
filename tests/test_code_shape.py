"""The shape of the code: no function in the core package runs past 60 lines (generated templates
aside), and no built-in method module casts its typed hyper-parameters or reaches for them by key.
ruff (`.ci/run`, pyproject's [tool.ruff]) checks complexity; this checks what ruff does not."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LONGEST = 60


def _functions(path: Path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node.name, node.end_lineno - node.lineno + 1


def test_no_function_in_the_core_is_over_60_lines():
    long = [f"{path.relative_to(ROOT)}:{name} ({lines} lines)"
            for path in sorted((ROOT / "cmhbench").rglob("*.py"))
            for name, lines in _functions(path) if lines > LONGEST]
    assert not long, long


def test_built_in_methods_read_typed_hyper_parameters():
    """`self.hp.lr`, not `float(hp["lr"])`; no `is_feature_encoder` branches; no re-exports."""
    offending = []
    for path in sorted((ROOT / "plugins" / "cmhbench_methods").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for pattern in (r"(float|int|str|bool)\((self\.)?h(p|params)\[", r"is_feature_encoder", r"noqa: F401"):
            offending += [f"{path.relative_to(ROOT)}: {m.group(0)}" for m in re.finditer(pattern, text)]
    assert not offending, offending
