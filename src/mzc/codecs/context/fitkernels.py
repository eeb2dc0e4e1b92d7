"""The encoder's least-squares fits, compiled: one pass over a class's sample pixels accumulates the normal
equations instead of numpy's matrix products on sliced copies (the fits of a 510 x 667 plane's 18 passes took
three times as long as coding its pixels). Only the encoder runs this: the stored integers define the model.
"""
from __future__ import annotations

import numba
import numpy as np

JIT = dict(nogil=True, cache=True)


@numba.njit(**JIT)
def _solve(gram, rhs):
    """The normal equations with a whisker of ridge (a constant feature must not make them singular)."""
    k = gram.shape[0]
    trace = 0.0
    for i in range(k):
        trace += gram[i, i]
    for i in range(k):
        gram[i, i] += 1e-9 * trace / k + 1e-12
    return np.linalg.solve(gram, rhs)


@numba.njit(**JIT)
def _lsq(x, y):
    """Least squares of y on the rows of x (features, n), through the normal equations."""
    return _solve(x @ x.T, x @ y)


@numba.njit(**JIT)
def class_weights(features, target, scale_x, classes, n_classes, min_rows, max_weight):
    """Per class (features then offset, in 1/4096): least squares, then again weighted by the inverse of the error
    expected from the local activity and level (a fit of log2 |error| on scale_x). A class with fewer than
    min_rows pixels keeps zero weights (the core four's mean)."""
    k, n = features.shape
    out = np.zeros((n_classes, k), np.int64)
    counts = np.bincount(classes, minlength=n_classes)
    order = np.argsort(classes, kind="mergesort")
    start = 0
    for c in range(n_classes):
        rows = order[start:start + counts[c]]
        start += counts[c]
        if counts[c] < min_rows:
            continue
        x = np.empty((k, rows.size))
        sx = np.empty((3, rows.size))
        for a in range(k):
            x[a] = features[a][rows]
        for a in range(3):
            sx[a] = scale_x[a][rows]
        y = target[rows]
        w = _lsq(x, y)
        spread = _lsq(sx, np.log2(np.abs(y - w @ x) + 2048.0))
        inv = np.exp2(-np.minimum(np.maximum(spread @ sx, 0.0), 40.0))
        w = _lsq(x * inv, y * inv)
        for a in range(k):
            out[c, a] = min(max(np.rint(w[a]), -max_weight), max_weight)
    return out
