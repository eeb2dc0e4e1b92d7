"""Codecs, one module each; importing this package registers them all."""
from . import bounded, classic, hybrid, inr, learned, lossless, nearlossless, noise  # noqa: F401  (registration side effect)
from .base import REGISTRY, Codec, from_config

__all__ = ["REGISTRY", "Codec", "from_config"]
