"""Segmenters loaded by `mzc eval --segmenter tests.segmenter_plugin:NAME` in tests/test_eval.py."""
import numpy as np
from scipy import ndimage


def above_mean(plane: np.ndarray) -> np.ndarray:
    """Connected components of the pixels above the plane's mean."""
    return ndimage.label(plane > plane.mean())[0]


def wrong_shape(plane: np.ndarray) -> np.ndarray:
    return np.zeros((3, 3), np.int32)
