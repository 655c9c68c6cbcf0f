"""Loads plugins from the `cmhbench` entry-point group and collects their specs.

Built-in plugins (this distribution's own entry points) load exactly like third-party ones. Each
plugin is loaded and each of its hooks called separately, so that one broken plugin is reported by
name with its error while every other keeps working, and so that a duplicate name can be reported
with both of its origins.
"""

from __future__ import annotations

import importlib
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.metadata import entry_points
from typing import Any

import pluggy

from cmhbench.errors import CmhbenchError
from cmhbench.plugins import PROJECT_NAME, hookspecs
from cmhbench.specs import DatasetSpec, EncoderSpec, MethodSpec, lazy
from cmhbench.suggest import unknown_name_message

ENTRY_POINT_GROUP = "cmhbench"
#: Set to 1/true/yes to load only the built-in plugins (third-party entry points are skipped).
DISABLE_ENV = "CMHBENCH_DISABLE_PLUGINS"
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]*")
MAX_NAME_LENGTH = 64
BUILTIN_DISTRIBUTION = "cmhbench"
# Used when cmhbench runs from a source tree that was never installed, so no entry points exist.
_BUILTIN_MODULES = {
    "encoders": "cmhbench.encoders.plugin",
    "methods": "cmhbench_methods.plugin",
    "datasets": "cmhbench_datasets.plugin",
}

_KINDS = {
    "method": ("cmhbench_register_methods", MethodSpec),
    "dataset": ("cmhbench_register_datasets", DatasetSpec),
    "encoder": ("cmhbench_register_encoders", EncoderSpec),
}


@dataclass(frozen=True)
class PluginInfo:
    """One loaded (or broken) plugin, for `cmhbench plugins`."""

    name: str
    origin: str  # "builtin" or the distribution name and version
    module: str
    error: str | None = None
    provides: tuple[str, ...] = ()


@dataclass
class Registry:
    """All registered specs by kind and name, plus the plugins they came from."""

    specs: dict[str, dict[str, Any]] = field(default_factory=lambda: {k: {} for k in _KINDS})
    origins: dict[tuple[str, str], str] = field(default_factory=dict)
    plugins: list[PluginInfo] = field(default_factory=list)
    #: Duplicate names found while registering: reported, and fatal when that name is used.
    conflicts: dict[tuple[str, str], str] = field(default_factory=dict)

    def names(self, kind: str) -> list[str]:
        return sorted(self.specs[kind])

    def get(self, kind: str, name: str) -> Any:
        if (kind, name) in self.conflicts:
            raise CmhbenchError(self.conflicts[(kind, name)])
        try:
            return self.specs[kind][name]
        except KeyError:
            message = unknown_name_message(kind, name, self.specs[kind])
            if self.broken:
                names = ", ".join(p.name for p in self.broken)
                message += f"; plugin(s) that failed to load: {names} (see `cmhbench plugins`)"
            raise CmhbenchError(message) from None

    def method(self, name: str) -> MethodSpec:
        return self.get("method", name)

    def dataset(self, name: str) -> DatasetSpec:
        return self.get("dataset", name)

    def encoder(self, name: str) -> EncoderSpec:
        return self.get("encoder", name)

    def origin(self, kind: str, name: str) -> str:
        return self.origins[(kind, name)]

    @property
    def broken(self) -> list[PluginInfo]:
        return [p for p in self.plugins if p.error]

    def add(self, kind: str, spec: Any, origin: str) -> None:
        """Register one spec; a second spec of the same kind and name is a conflict naming both."""
        hook, spec_type = _KINDS[kind]
        if not isinstance(spec, spec_type):
            raise TypeError(f"{hook} returned {type(spec).__name__}, expected {spec_type.__name__}")
        if not isinstance(spec.name, str) or not NAME_PATTERN.fullmatch(spec.name):
            # names become folder and file names of results: nothing that can leave --results
            raise CmhbenchError(f"{kind} name {str(spec.name)[:80]!r} from {origin} is not an identifier: expected "
                                "lower-case letters, digits, '.', '_' or '-', starting with a letter or digit")
        if len(spec.name) > MAX_NAME_LENGTH:
            raise CmhbenchError(f"{kind} name {spec.name[:40]!r}… from {origin} has {len(spec.name):,} characters; "
                                f"names have at most {MAX_NAME_LENGTH} (they become file names and table cells)")
        factory = getattr(spec, "create", None) or getattr(spec, "open", None)  # DatasetSpec opens
        if isinstance(factory, lazy) and not factory.findable():
            raise CmhbenchError(f"{kind} {spec.name!r} from {origin}: its implementation {factory.target!r} cannot be "
                                "found (module not installed, or a typo in the lazy target)")
        key = (kind, spec.name)
        if key in self.origins:
            message = (
                f"duplicate {kind} name {spec.name!r}: registered by {self.origins[key]} "
                f"and by {origin}; uninstall one of them or disable third-party plugins with "
                f"{DISABLE_ENV}=1"
            )
            self.conflicts[key] = message
            raise CmhbenchError(message)
        self.specs[kind][spec.name] = spec
        self.origins[key] = origin


def plugins_disabled() -> bool:
    return os.environ.get(DISABLE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def _discover() -> list[tuple[str, str, str, Any]]:
    """(plugin name, origin, module path, loader) for every plugin to load, built-ins first."""
    found: list[tuple[str, str, str, Any]] = []
    builtin_seen = False
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist.name if ep.dist is not None else "unknown"
        is_builtin = dist == BUILTIN_DISTRIBUTION
        builtin_seen |= is_builtin
        if not is_builtin and plugins_disabled():
            continue
        origin = "builtin" if is_builtin else f"{dist} {ep.dist.version if ep.dist else ''}".strip()
        found.append((ep.name if is_builtin else f"{dist}:{ep.name}", origin, ep.value, ep.load))
    if not builtin_seen:
        for name, module in _BUILTIN_MODULES.items():
            found.append((name, "builtin", module, lambda m=module: importlib.import_module(m)))
    found.sort(key=lambda item: item[1] != "builtin")
    return found


def build_registry(extra_plugins: list[tuple[str, Any]] | None = None) -> Registry:
    """Load every plugin and collect its specs. ``extra_plugins`` (name, module object) are for tests
    and embedding: they register exactly as entry-point plugins do."""
    registry = Registry()
    manager = pluggy.PluginManager(PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    candidates = list(_discover())
    for name, module in extra_plugins or []:
        candidates.append((name, f"extra plugin {name}", getattr(module, "__name__", name),
                           lambda m=module: m))
    known_hooks = sorted(hook for hook, _ in _KINDS.values())
    for name, origin, module_path, load in candidates:
        try:
            plugin = load()
            unknown = sorted(attr for attr in dir(plugin) if attr.startswith(f"{PROJECT_NAME}_")
                             and callable(getattr(plugin, attr)) and attr not in known_hooks)
            if unknown:
                raise CmhbenchError(f"unknown hook {', '.join(unknown)}; known hooks: {', '.join(known_hooks)}")
            manager.register(plugin, name=name)
        except BaseException as exc:  # a broken plugin must not take the others down, nor exit
            _reraise_user_interrupt(exc)
            registry.plugins.append(PluginInfo(name, origin, module_path, _describe(exc)))
            continue
        provides, error = [], None
        for kind, (hook_name, _) in _KINDS.items():
            own = [i for i in getattr(manager.hook, hook_name).get_hookimpls() if i.plugin_name == name]
            if not own:
                continue
            try:
                specs = list(own[0].function() or [])
            except BaseException as exc:
                _reraise_user_interrupt(exc)
                error = f"{hook_name}: {_describe(exc)}"
                continue
            for spec in specs:
                try:
                    registry.add(kind, spec, f"plugin {name!r} ({origin})")
                    provides.append(f"{kind}:{spec.name}")
                except (CmhbenchError, TypeError) as exc:
                    error = str(exc)
        registry.plugins.append(PluginInfo(name, origin, module_path, error, tuple(provides)))
    return registry


def _reraise_user_interrupt(exc: BaseException) -> None:
    """Ctrl-C and SIGTERM stop the program; a plugin's SystemExit or custom BaseException does not."""
    from cmhbench.interrupts import Terminated

    if type(exc) in (KeyboardInterrupt, Terminated):
        raise exc


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


@lru_cache(maxsize=1)
def get_registry() -> Registry:
    """The process-wide registry, built on first use."""
    return build_registry()
