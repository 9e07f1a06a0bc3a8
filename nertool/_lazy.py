"""Package exports resolved on first use, so importing a package never pulls in torch or matplotlib.

Each stage package names its public pieces in its ``__init__.py`` as ``{name: submodule}``; the
submodule is imported only when the name is asked for (``from nertool.model import encode``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def exports(package: str, public: Mapping[str, str]) -> tuple[list[str], Callable[[str], Any]]:
    """``(__all__, __getattr__)`` for ``package``, whose public names live in the given submodules."""

    def getattr_(name: str) -> Any:
        if name not in public:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(f"{package}.{public[name]}"), name)

    return sorted(public), getattr_
