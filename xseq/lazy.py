"""Lazy package attributes (PEP 562): a package names what it exports and where each name lives; the module is
imported when the name is first used, so importing the package costs nothing up front (the command line
answers --help without loading torch)."""
from __future__ import annotations

import importlib


def attach(package: str, names: dict[str, str]):
    """(__getattr__, __dir__) for `package`, whose attribute NAME comes from module names[NAME] (relative to
    the package, e.g. ".estimator"). A package assigns both: `__getattr__, __dir__ = attach(__name__, {...})`."""

    def __getattr__(name: str):
        if name in names:
            module = importlib.import_module(names[name], package)
            if name == names[name].rsplit(".", 1)[-1]:  # "ops": ".ops" is the module; "generate": ".generate"
                value = getattr(module, name, module)  # is the function the module defines
            else:
                value = getattr(module, name)
            setattr(importlib.import_module(package), name, value)
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(set(vars(importlib.import_module(package))) | set(names))

    return __getattr__, __dir__
