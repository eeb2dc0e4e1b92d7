"""Guidance for neural-field fits: per-pixel loss weights that steer a field's capacity toward what an analysis uses.

`segmentation`: foreground from a classical segmentation of the input itself (Gaussian smoothing + Otsu threshold,
plane by plane) plus a band around every object's boundary, where segmentation decides between touching objects and
background. Those pixels weigh FOREGROUND_WEIGHT times more in the fit's squared error.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from ...errors import MzcError
from ...foreground import foreground

GUIDES = ("segmentation",)
FOREGROUND_WEIGHT = 4.0
BOUNDARY_WEIGHT = 8.0
BAND_PX = 2


def check_guide(guide: str | None) -> None:
    if guide is not None and guide not in GUIDES:
        raise MzcError(f"unknown --guide {guide!r}: choose from {', '.join(GUIDES)}")


def weights(volume: np.ndarray, guide: str | None) -> np.ndarray | None:
    """Loss weights for a 2-D plane or a (D, H, W) volume; None without guidance."""
    if guide is None:
        return None
    if guide not in GUIDES:
        raise MzcError(f"unknown --guide {guide!r}: choose from {', '.join(GUIDES)}")
    planes = volume.reshape(-1, *volume.shape[-2:])
    out = np.ones(planes.shape, np.float32)
    for k, plane in enumerate(planes):
        fg = foreground(plane)
        band = ndimage.binary_dilation(fg, iterations=BAND_PX) & ~ndimage.binary_erosion(fg, iterations=BAND_PX)
        out[k][fg] = FOREGROUND_WEIGHT
        out[k][band] = BOUNDARY_WEIGHT
    return out.reshape(volume.shape)
