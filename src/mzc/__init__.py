"""mzc: gzip for microscopy. Compress TIFF stacks into .mzc files, decode any region, measure what was lost.

The public API is loaded on first use (PEP 562), so `import mzc` costs almost nothing: mzc.encode, mzc.decode,
mzc.open, mzc.imread, mzc.info, mzc.verify, mzc.is_mzc, mzc.StackWriter, mzc.recover, mzc.MzcError.
"""
from __future__ import annotations

import importlib

from ._version import __version__
from .errors import MzcError

_LAZY = {"encode": "api", "decode": "api", "open": "api", "imread": "api", "info": "api", "verify": "api",
         "is_mzc": "api", "StackWriter": "encoding.stackwriter", "recover": "format.recover"}

__all__ = ["MzcError", "StackWriter", "__version__", "decode", "encode", "imread", "info", "is_mzc", "open", "recover",
           "verify"]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mzc' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
