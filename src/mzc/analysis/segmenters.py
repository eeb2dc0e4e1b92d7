"""Which segmentation `mzc eval` runs: the built-in classical pipeline, StarDist or Cellpose when the user has them
(and their weights) installed, or any `package.module:function` taking a 2-D plane and returning a label image."""
from __future__ import annotations

import importlib
from typing import Callable

import numpy as np

from ..errors import MzcError
from .segmentation import segment

Segmenter = Callable[[np.ndarray], np.ndarray]


def get(name: str) -> Segmenter:
    if name == "classic":
        return segment
    if name == "stardist":
        return _stardist()
    if name == "cellpose":
        return _cellpose()
    if ":" in name:
        return _plugin(name)
    raise MzcError(f"unknown segmenter {name!r}: choose classic, stardist, cellpose or package.module:function")


def _plugin(spec: str) -> Segmenter:
    module_name, _, attr = spec.partition(":")
    try:
        fn = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise MzcError(f"segmenter {spec!r} cannot be loaded ({exc})") from None
    if not callable(fn):
        raise MzcError(f"segmenter {spec!r} is not a function")
    return _checked(fn, spec)


def _checked(fn: Callable, name: str) -> Segmenter:
    def run(plane: np.ndarray) -> np.ndarray:
        labels = np.asarray(fn(plane))
        if labels.shape != plane.shape or labels.dtype.kind not in "iub":
            raise MzcError(f"segmenter {name} returned {labels.dtype} {labels.shape}; expected integer labels of "
                           f"shape {plane.shape}")
        if labels.size and labels.min() < 0:
            raise MzcError(f"segmenter {name} returned negative labels")
        return labels.astype(np.int32)
    return run


def _stardist() -> Segmenter:
    try:
        from csbdeep.utils import normalize
        from stardist.models import StarDist2D
    except ImportError:
        raise MzcError("--segmenter stardist needs the stardist package (pip install stardist tensorflow)") from None
    try:
        model = StarDist2D.from_pretrained("2D_versatile_fluo")
    except Exception as exc:  # noqa: BLE001 - no network here: the weights must already be cached
        raise MzcError(f"StarDist's 2D_versatile_fluo weights are not available ({exc})") from None
    return _checked(lambda plane: model.predict_instances(normalize(plane, 1, 99.8))[0], "stardist")


def _cellpose() -> Segmenter:
    try:
        from cellpose import models
    except ImportError:
        raise MzcError("--segmenter cellpose needs the cellpose package (pip install cellpose)") from None
    try:
        model = models.CellposeModel(model_type="nuclei") if hasattr(models, "CellposeModel") else \
            models.Cellpose(model_type="nuclei")
    except Exception as exc:  # noqa: BLE001 - no network here: the weights must already be cached
        raise MzcError(f"Cellpose's nuclei weights are not available ({exc})") from None
    return _checked(lambda plane: model.eval(plane, channels=[0, 0])[0], "cellpose")
