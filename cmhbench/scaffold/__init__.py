"""`cmhbench new-method NAME`: a ready-to-install method plugin package, from the templates here."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from cmhbench.errors import CmhbenchError
from cmhbench.fsutil import atomic_path
from cmhbench.plugins.registry import NAME_PATTERN

# template file -> path in the new package ({package} is replaced)
FILES = {
    "pyproject.toml.tmpl": "pyproject.toml",
    "README.md.tmpl": "README.md",
    "init.py.tmpl": "{package}/__init__.py",
    "plugin.py.tmpl": "{package}/plugin.py",
    "method.py.tmpl": "{package}/method.py",
    "test_method.py.tmpl": "tests/test_{package}.py",
}


def package_name(method: str) -> str:
    return "cmhbench_" + re.sub(r"[^a-z0-9_]", "_", method)


def new_method(method: str, parent: str | Path = ".") -> Path:
    """Write the plugin package for ``method`` into ``parent/cmhbench-<method>``; return its folder.
    Refuses a name that is not a method identifier and a folder that exists (nothing is overwritten)."""
    if not NAME_PATTERN.fullmatch(method):
        raise CmhbenchError(f"method name {method!r}: use lower-case letters, digits, '.', '_' or '-', starting "
                            "with a letter or digit (e.g. my-method)")
    root = Path(parent) / f"cmhbench-{method}"
    if root.exists():
        raise CmhbenchError(f"{root} exists already; choose another --dir or remove it")
    values = {"method": method, "package": package_name(method), "distribution": f"cmhbench-{method}"}
    templates = resources.files("cmhbench.scaffold") / "templates"
    for template, target in FILES.items():
        text = (templates / template).read_text(encoding="utf-8")
        for key, value in values.items():
            text = text.replace("{{" + key + "}}", value)
        path = root / target.format(**values)
        with atomic_path(path) as tmp:
            tmp.write_text(text, encoding="utf-8")
    return root
