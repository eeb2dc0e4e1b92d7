"""A yardstick for downstream agreement: the original with one more sigma(x) of its own shot + read noise.

Re-imaging the same field changes every pixel by about its noise, so an analysis that moves under that perturbation
was never more stable than this. `mzc bench` measures it beside the codecs (`reference:noise`): a codec whose
segmentation F1 or intensity error is as good as this row's changes the answer no more than the camera does."""
from __future__ import annotations

import numpy as np

from ..bounds.noise_model import NoiseModel, fit
from .baselines import planes_of

SEED = 0


def channel_views(array: np.ndarray, axes: str) -> list[np.ndarray]:
    """The array split along its channel axis (C), or the whole array when it has none."""
    if "C" not in axes:
        return [array]
    c = axes.index("C")
    return [np.take(array, k, axis=c) for k in range(array.shape[c])]


def renoise(array: np.ndarray, axes: str, seed: int = SEED) -> tuple[np.ndarray, list[NoiseModel]]:
    """The array plus Gaussian noise of variance a*x + b per pixel, (a, b) fitted per channel as --noise does."""
    rng = np.random.default_rng(seed)
    info = np.iinfo(array.dtype)
    clipped = (float(array.min()), float(array.max()))
    out = np.empty_like(array)
    models = []
    for k, view in enumerate(channel_views(array, axes)):
        model = fit(iter(planes_of(view, axes.replace("C", ""))), clipped)
        models.append(model)
        noisy = view + rng.normal(0.0, 1.0, view.shape) * model.sigma(view)
        noisy = np.clip(np.rint(noisy), info.min, info.max).astype(array.dtype)
        if "C" in axes:
            index = [slice(None)] * array.ndim
            index[axes.index("C")] = k
            out[tuple(index)] = noisy
        else:
            out[...] = noisy
    return out, models
