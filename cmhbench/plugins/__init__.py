"""pluggy plugin system: hook specifications, the `hookimpl` marker and the registry."""

import pluggy

PROJECT_NAME = "cmhbench"
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
hookspec = pluggy.HookspecMarker(PROJECT_NAME)

__all__ = ["PROJECT_NAME", "hookimpl", "hookspec"]
