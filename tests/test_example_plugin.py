"""The example third-party plugin, installed as its own distribution, end to end through the CLI."""

from __future__ import annotations

import json
from importlib.metadata import PackageNotFoundError, distribution

import pytest
from conftest import run_cli


@pytest.fixture(scope="module", autouse=True)
def example_installed():
    try:
        distribution("cmhbench-example-plugin")
    except PackageNotFoundError:
        pytest.fail("the example plugin is not installed: pip install -e examples/cmhbench-example-plugin")


def test_listed_with_its_origin():
    result = run_cli("methods", env={"COLUMNS": "300"})
    assert result.returncode == 0
    line = next(row for row in result.stdout.splitlines() if "ridge-codes" in row)
    assert "cmhbench-example-plugin" in line


def test_run_and_scored_through_the_cli(tmp_path):
    result = run_cli("run", "--method", "ridge-codes", "--dataset", "toy", "--dataset-opt", "size=300",
                     "--device", "cpu", "--quiet", "--results", str(tmp_path), env={"COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    files = list(tmp_path.rglob("*.json"))
    assert len(files) == 1
    record = json.loads(files[0].read_text())
    assert record["method"]["plugin"].startswith("plugin 'cmhbench-example-plugin:example'")
    # supervised regression on label-derived targets is far above random codes (about 0.3 here)
    assert record["metrics"]["i2t"]["map"] > 0.38 and record["metrics"]["t2i"]["map"] > 0.38
