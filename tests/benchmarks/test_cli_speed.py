"""How fast the CLI answers what needs no training: `cmhbench methods` and a malformed option
(`run --bits abc`), against the interpreter starting and exiting (`python -c pass`) on the same
machine, median of several runs each. Neither command may import torch (tests/test_cli.py checks
that); the target is under 1.5 s on a 2-core machine.

    pytest tests/benchmarks/test_cli_speed.py -m perf -p no:cacheprovider
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.benchmarks.conftest import record
from tests.conftest import CLI

pytestmark = pytest.mark.perf
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "cmhbench methods": [*CLI, "methods"],
    "cmhbench run --bits abc": [*CLI, "run", "--method", "dcmh", "--dataset", "toy", "--bits", "abc"],
}


@pytest.mark.parametrize("name", list(COMMANDS))
def test_cli_answers_quickly(benchmark, name):
    def once():
        subprocess.run(COMMANDS[name], capture_output=True, timeout=120)

    benchmark.pedantic(once, rounds=7, iterations=1, warmup_rounds=1)
    record(benchmark, f"{name} (median)", reference=None if name == "python -c pass" else "python -c pass (median)",
           statistic="median")
