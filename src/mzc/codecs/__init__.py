"""Codecs, one module each, behind one protocol (base.py) and one registry (registry.py).

Importing this package imports no codec: the registry loads the built-in modules and the plug-ins the first time it
is asked, so `mzc --version` or `mzc info` do not pay for imagecodecs or torch.
"""
from .base import Codec
from .registry import codecs, from_config, lookup, register

__all__ = ["Codec", "codecs", "from_config", "lookup", "register"]
