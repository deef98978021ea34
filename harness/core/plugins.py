"""Third-party extensions through entry points: a package adds gates (group `harness.gates`) or runtime backends
(group `harness.backends`) by naming, in its own pyproject.toml, a module that registers them when imported:

    [project.entry-points."harness.gates"]
    my_gate = "my_package.my_gate"        # the module calls @gates.gate("my_gate", ...)

    [project.entry-points."harness.backends"]
    my_backend = "my_package.my_backend"  # the module calls @harness.core.runtime.registry.backend("my_backend")

Each group is loaded once per process, the first time a gate or backend is looked up. A plugin that fails to
import is skipped with a warning naming it and the error; asking for what it would have registered then fails with
that error too."""

from __future__ import annotations

import warnings
from importlib.metadata import entry_points

_loaded: dict[str, dict[str, str]] = {}  # group -> entry point name -> the error that kept it out ("" loaded)


def load_plugins(group: str) -> dict[str, str]:
    """Import every entry point of `group` (once per process); returns name -> error ("" when it loaded)."""
    if group not in _loaded:
        _loaded[group] = {}
        for ep in sorted(entry_points(group=group), key=lambda e: e.name):
            try:
                ep.load()
                _loaded[group][ep.name] = ""
            except Exception as e:  # a broken plugin must not take down every run
                where = ep.dist.name if ep.dist is not None else ep.value
                _loaded[group][ep.name] = f"{type(e).__name__}: {e}"
                warnings.warn(f"the {group} plugin {ep.name!r} ({where}: {ep.value}) failed to load: {e}", stacklevel=2)
    return _loaded[group]


def plugin_failures(group: str) -> str:
    """The plugins of `group` that failed to load, for an error message ("" when none failed)."""
    bad = {n: e for n, e in load_plugins(group).items() if e}
    return "; ".join(f"plugin {n!r} failed to load ({e})" for n, e in bad.items())
