"""`cmhbench new-method`: the package it writes installs, registers, runs on toy and passes the
conformance check."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cmhbench.errors import CmhbenchError
from cmhbench.scaffold import new_method
from conftest import run_cli


def test_the_new_package_conforms(tmp_path, monkeypatch):
    from cmhbench.testing import check_method

    root = new_method("my-method", tmp_path)
    monkeypatch.syspath_prepend(str(root))
    from cmhbench_my_method.plugin import cmhbench_register_methods

    [spec] = cmhbench_register_methods()
    assert spec.name == "my-method"
    assert "resume" in check_method(spec, workdir=tmp_path / "check")


def test_bad_names_and_existing_folders_are_refused(tmp_path):
    with pytest.raises(CmhbenchError, match="method name 'My Method'"):
        new_method("My Method", tmp_path)
    new_method("ok", tmp_path)
    with pytest.raises(CmhbenchError, match="exists already"):
        new_method("ok", tmp_path)


def test_new_method_install_and_toy_run_through_the_cli(tmp_path):
    """What a plugin author does: new-method, pip install, run on toy. The package is installed into
    a target folder (not this environment); its entry point is found through PYTHONPATH."""
    created = run_cli("new-method", "quick-try", "--dir", str(tmp_path))
    assert created.returncode == 0, created.stderr
    target = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                              "--target", str(target), str(tmp_path / "cmhbench-quick-try")],
                             capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr
    env = {"PYTHONPATH": str(target)}
    listed = run_cli("methods", "--json", env=env)
    assert "quick-try" in listed.stdout, listed.stderr
    ran = run_cli("run", "--method", "quick-try", "--dataset", "toy", "--epochs", "2", "--dataset-opt", "size=100",
                  "--device", "cpu", "--quiet", "--results", str(tmp_path / "results"), env=env)
    assert ran.returncode == 0, ran.stderr
    assert list((tmp_path / "results" / "toy" / "quick-try").glob("*.json"))


def test_a_name_with_a_dot_gives_a_valid_entry_point(tmp_path):
    import tomllib

    root = new_method("my.method", tmp_path)
    project = tomllib.loads((root / "pyproject.toml").read_text())
    assert project["project"]["entry-points"]["cmhbench"] == {"my.method": "cmhbench_my_method.plugin"}
