"""Foreground of a fluorescence plane: Otsu threshold of the Gaussian-smoothed plane.

Shared by what codes (neural-field guidance weights objects) and what measures (segmentation, ratio maps), so it
lives below both rather than in the analysis package.
"""
from __future__ import annotations

import numpy as np

SMOOTH_SIGMA = 2.0


def foreground(plane: np.ndarray) -> np.ndarray:
    """Otsu foreground of a Gaussian-smoothed plane (all False when the plane is flat)."""
    from scipy import ndimage
    from skimage.filters import threshold_otsu
    smooth = ndimage.gaussian_filter(plane.astype(np.float32), SMOOTH_SIGMA)
    if float(smooth.max()) <= float(smooth.min()):
        return np.zeros(plane.shape, bool)
    return smooth > threshold_otsu(smooth)
