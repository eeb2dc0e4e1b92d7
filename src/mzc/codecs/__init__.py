"""Codecs, one module each, behind one protocol (base.py) and one registry (registry.py).

Importing this package imports no codec and no numpy: the registry loads the built-in modules and the plug-ins the
first time it is asked, so `mzc --version` or `mzc info` do not pay for imagecodecs or torch.
"""
from __future__ import annotations

import importlib

_LAZY = {"Codec": "base", "codecs": "registry", "from_config": "registry", "lookup": "registry",
         "register": "registry"}
__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
