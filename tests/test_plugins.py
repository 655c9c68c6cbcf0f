"""Plugin registration through real entry points: built-ins, third-party, duplicates, broken ones."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from cmhbench.errors import CmhbenchError
from cmhbench.plugins.registry import build_registry
from conftest import run_cli


def make_distribution(root: Path, dist: str, module: str, source: str) -> Path:
    """A minimal installed distribution on a path entry: dist-info with a `cmhbench` entry point."""
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[cmhbench]\nplugin = {module}\n")
    return root


DUPLICATE_DCMH = """
    from cmhbench import hookimpl
    from cmhbench.specs import Citation, MethodSpec

    @hookimpl
    def cmhbench_register_methods():
        return [MethodSpec(name="dcmh", description="an impostor", citation=Citation("x", "y", 2020),
                           create=lambda setup: None)]
"""

BROKEN = """
    raise ImportError("this plugin needs a package that is not installed")
"""


def test_builtins_register_through_hooks():
    registry = build_registry()
    assert "dcmh" in registry.names("method")
    assert "toy" in registry.names("dataset")
    assert {"alexnet", "vgg19", "resnet50", "identity"} <= set(registry.names("encoder"))
    assert registry.origin("method", "dcmh").endswith("(builtin)")
    spec = registry.method("dcmh")
    assert spec.citation.year == 2017 and spec.defaults["epochs"] == 500


def test_unknown_name_suggests_closest():
    registry = build_registry()
    with pytest.raises(CmhbenchError, match=r"unknown method 'dcmhh'; did you mean 'dcmh'"):
        registry.method("dcmhh")
    with pytest.raises(CmhbenchError, match="did you mean 'alexnet'"):
        registry.encoder("alexnt")


def test_duplicate_name_names_both_origins(tmp_path):
    root = make_distribution(tmp_path / "site", "impostor-plugin", "impostor_mod", DUPLICATE_DCMH)
    result = run_cli("run", "--method", "dcmh", "--dataset", "toy", env={"PYTHONPATH": str(root)})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    message = " ".join(result.stderr.split())
    assert "duplicate method name 'dcmh'" in message
    assert "builtin" in message and "impostor-plugin" in message
    # listing still works, and shows the failing plugin
    listing = run_cli("plugins", env={"PYTHONPATH": str(root), "COLUMNS": "250"})
    assert listing.returncode == 0
    assert "duplicate method name" in listing.stdout


def test_broken_plugin_is_listed_and_others_keep_working(tmp_path):
    root = make_distribution(tmp_path / "site", "broken-plugin", "broken_mod", BROKEN)
    env = {"PYTHONPATH": str(root), "COLUMNS": "250"}
    listing = run_cli("plugins", env=env)
    assert listing.returncode == 0, listing.stderr
    assert "broken-plugin" in listing.stdout
    assert "ImportError: this plugin needs a package that is not installed" in listing.stdout
    methods = run_cli("methods", env=env)
    assert methods.returncode == 0 and "dcmh" in methods.stdout


def test_environment_variable_disables_third_party_plugins(tmp_path):
    root = make_distribution(tmp_path / "site", "broken-plugin", "broken_mod", BROKEN)
    listing = run_cli("plugins", env={"PYTHONPATH": str(root), "COLUMNS": "250",
                                      "CMHBENCH_DISABLE_PLUGINS": "1"})
    assert listing.returncode == 0
    assert "broken-plugin" not in listing.stdout
    assert "builtin" in listing.stdout and "disabled" in listing.stdout


def test_a_default_outside_its_choices_is_refused_at_registration():
    from cmhbench.specs import Citation, MethodSpec

    with pytest.raises(ValueError, match="default form='both' is not among its choices"):
        MethodSpec(name="m", description="", citation=Citation("t", "v", 2026), create=lambda setup: None,
                   defaults={"form": "both"}, choices={"form": ("paper", "copied")})


def _module(name: str, source: str):
    import types

    module = types.ModuleType(name)
    exec(textwrap.dedent(source), module.__dict__)
    return module


EXITS_ON_IMPORT = """
    raise SystemExit(0)
"""

HOOK_RAISES_BASE_EXCEPTION = """
    from cmhbench import hookimpl

    class Sneaky(BaseException):
        pass

    @hookimpl
    def cmhbench_register_methods():
        raise Sneaky("not an Exception")
"""

HOOK_RETURNS_A_NUMBER = """
    from cmhbench import hookimpl

    @hookimpl
    def cmhbench_register_methods():
        return 42
"""

MISSPELLED_HOOK = """
    from cmhbench import hookimpl

    @hookimpl
    def cmhbench_register_method():
        return []
"""

PATH_NAME = """
    from cmhbench import hookimpl
    from cmhbench.specs import Citation, MethodSpec

    @hookimpl
    def cmhbench_register_methods():
        return [MethodSpec(name="../../../x", description="escape", citation=Citation("x", "y", 2020),
                           create=lambda setup: None)]
"""


@pytest.mark.parametrize("source, expected", [
    (HOOK_RAISES_BASE_EXCEPTION, "cmhbench_register_methods: Sneaky: not an Exception"),
    (HOOK_RETURNS_A_NUMBER, "TypeError"),
    (MISSPELLED_HOOK, "unknown hook cmhbench_register_method; known hooks: cmhbench_register_datasets"),
    (PATH_NAME, "method name '../../../x' from plugin 'bad' (extra plugin bad) is not an identifier"),
])
def test_a_misbehaving_plugin_is_listed_broken_and_the_rest_works(source, expected):
    registry = build_registry(extra_plugins=[("bad", _module("bad", source))])
    (bad,) = [p for p in registry.plugins if p.name == "bad"]
    assert bad.error and expected in bad.error, bad.error
    assert "dcmh" in registry.names("method") and "../../../x" not in registry.names("method")


def test_a_plugin_that_exits_on_import_does_not_exit_the_cli(tmp_path):
    """Before, every command exited 0 having done nothing."""
    root = make_distribution(tmp_path / "site", "exiting-plugin", "exiting_mod", EXITS_ON_IMPORT)
    env = {"PYTHONPATH": str(root), "COLUMNS": "250"}
    listing = run_cli("plugins", env=env)
    assert listing.returncode == 0 and "exiting-plugin" in listing.stdout and "SystemExit" in listing.stdout
    methods = run_cli("methods", env=env)
    assert methods.returncode == 0 and "dcmh" in methods.stdout


def test_citations_read_cleanly():
    """No doubled full stop after "et al." or a title's own full stop."""
    from cmhbench.specs import Citation

    assert str(Citation("Microsoft COCO.", "ECCV", 2014, "Lin et al.")) == "Lin et al. Microsoft COCO. ECCV 2014."
    assert str(Citation("A Title", "CVPR", 2017)) == "A Title. CVPR 2017."


def test_a_lazy_implementation_that_cannot_be_found_or_loaded_is_one_clear_error():
    """A lazy target is checked at registration (the plugin is listed broken) and a failure to load
    it later is a CmhbenchError naming the target, not a traceback."""
    from cmhbench.errors import CmhbenchError
    from cmhbench.plugins.registry import Registry
    from cmhbench.specs import Citation, MethodSpec, lazy

    spec = MethodSpec(name="ghost", description="d", citation=Citation("t", "v", 2026),
                      create=lazy("cmhbench_no_such_module_xyz:Ghost"))
    with pytest.raises(CmhbenchError, match="'cmhbench_no_such_module_xyz:Ghost' cannot be found"):
        Registry().add("method", spec, "test")
    with pytest.raises(CmhbenchError, match="cannot load json:no_such_attribute: AttributeError"):
        lazy("json:no_such_attribute")()
