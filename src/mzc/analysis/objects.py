"""Per-object measurements compared between the original and the decoded image: did compression change the numbers a
biologist reports? Shape features of matched objects get paired tests (the seed study's size, eccentricity, circularity
and perimeter t-tests); integrated intensities are compared object by object under the original's labels."""
from __future__ import annotations

import math

import numpy as np
from scipy import ndimage, stats

SHAPE_FEATURES = ("area", "eccentricity", "circularity", "perimeter")


def shape_features(labels: np.ndarray) -> dict[str, np.ndarray]:
    """Feature arrays indexed by label (entry 0 and absent labels NaN); circularity = 4 pi area / perimeter^2."""
    from skimage.measure import regionprops_table
    n = int(labels.max())
    table = regionprops_table(labels, properties=("label", "area", "eccentricity", "perimeter"))
    out = {}
    for name in ("area", "eccentricity", "perimeter"):
        column = np.full(n + 1, np.nan)
        column[table["label"]] = table[name]
        out[name] = column
    with np.errstate(divide="ignore", invalid="ignore"):
        circ = 4 * math.pi * out["area"] / out["perimeter"] ** 2
    out["circularity"] = np.where(out["perimeter"] > 0, circ, np.nan)
    return out


def paired_test(ref: np.ndarray, test: np.ndarray) -> dict:
    """Paired t-test and Wilcoxon signed-rank test of one feature over matched objects.

    Identical values give p = 1 (no difference to detect); fewer than two pairs give p = None."""
    keep = np.isfinite(ref) & np.isfinite(test)
    ref, test = np.asarray(ref, float)[keep], np.asarray(test, float)[keep]
    out = {"n": int(ref.size), "mean_ref": _mean(ref), "mean_test": _mean(test),
           "mean_rel_diff": _mean((test - ref) / np.where(ref != 0, np.abs(ref), np.nan)) if ref.size else None,
           "t_p": None, "wilcoxon_p": None}
    if ref.size < 2:
        return out
    diff = test - ref
    if not np.any(diff):
        out["t_p"] = out["wilcoxon_p"] = 1.0
        return out
    out["t_p"] = _finite(stats.ttest_rel(test, ref).pvalue)
    out["wilcoxon_p"] = _finite(stats.wilcoxon(test, ref, zero_method="zsplit").pvalue)
    return out


def integrated_intensity(labels: np.ndarray, image: np.ndarray) -> np.ndarray:
    """Sum of the pixel values of each object 1..max (CellProfiler's IntegratedIntensity, no background removed)."""
    n = int(labels.max())
    if n == 0:
        return np.zeros(0)
    return np.asarray(ndimage.sum_labels(image.astype(np.float64), labels, index=np.arange(1, n + 1)))


def intensity_agreement(ref: np.ndarray, test: np.ndarray) -> dict:
    """How the decoded image's per-object intensities follow the original's: OLS slope/intercept of test on ref,
    Pearson r, and relative errors |test - ref| / ref (median, 95th percentile, max)."""
    ref, test = np.asarray(ref, float), np.asarray(test, float)
    out = {"n_objects": int(ref.size)}
    if ref.size == 0:
        return out | {"slope": None, "intercept": None, "pearson_r": None, "median_rel_error": None,
                      "p95_rel_error": None, "max_rel_error": None}
    rel = np.abs(test - ref) / np.maximum(np.abs(ref), np.finfo(float).tiny)
    if ref.size >= 2 and np.ptp(ref) > 0:
        slope, intercept = np.polyfit(ref, test, 1)
        r = 1.0 if np.array_equal(ref, test) else (float(np.corrcoef(ref, test)[0, 1]) if np.ptp(test) > 0 else 0.0)
    else:
        slope, intercept, r = (1.0, 0.0, 1.0) if np.array_equal(ref, test) else (None, None, None)
    return out | {"slope": _round(slope), "intercept": _round(intercept), "pearson_r": _round(r),
                  "median_rel_error": _round(np.median(rel)), "p95_rel_error": _round(np.percentile(rel, 95)),
                  "max_rel_error": _round(rel.max())}


def _mean(values: np.ndarray) -> float | None:
    return _round(np.nanmean(values)) if values.size and np.isfinite(values).any() else None


def _finite(p: float) -> float | None:
    return float(p) if np.isfinite(p) else None


def _round(value) -> float | None:
    return None if value is None else float(f"{float(value):.6g}")
