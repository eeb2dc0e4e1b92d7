"""Ratio imaging (pH, FRET, calcium ratio dyes): channel a / channel b after background removal, compared between the
original and the decoded data (the seed study's Table S7: SSIM, PSNR and Pearson r of the two ratio maps).

Background handling, as an analyst would do it on each image separately: both channels are smoothed (Gaussian,
sigma 1 px: a ratio of single noisy pixels measures noise), the analysis region is the Otsu foreground of the
original's smoothed denominator, each channel's background is its median outside the region, and only pixels whose
background-subtracted denominator exceeds 3 robust standard deviations of its background (MAD) are measured: near
zero a ratio explodes and no ratiometric study reports it."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from ..foreground import foreground
from ..metrics import psnr

SMOOTH_SIGMA = 1.0
MIN_SNR = 3.0


def region(denominator: np.ndarray) -> np.ndarray:
    """Pixels where a ratio is measured: the smoothed denominator's Otsu foreground."""
    return foreground(denominator)


def ratio_map(numerator: np.ndarray, denominator: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Background-subtracted a / b inside `mask` where b is clearly above its background; NaN elsewhere."""
    a = ndimage.gaussian_filter(numerator.astype(np.float64), SMOOTH_SIGMA)
    b = ndimage.gaussian_filter(denominator.astype(np.float64), SMOOTH_SIGMA)
    outside = ~mask
    floor = 0.0
    if outside.any():
        a = a - np.median(a[outside])
        background = b[outside]
        centre = np.median(background)
        b = b - centre
        floor = MIN_SNR * 1.4826 * float(np.median(np.abs(background - centre)))
    out = np.full(a.shape, np.nan)
    ok = mask & (b > floor)
    out[ok] = a[ok] / b[ok]
    return out


@dataclass
class RatioAgreement:
    """Ratio maps of (original, decoded) pairs of planes, pooled: PSNR on the original ratio's range, SSIM averaged
    over the region's pixels, Pearson r over them."""
    ref: list = field(default_factory=list)
    test: list = field(default_factory=list)

    def add(self, original: tuple[np.ndarray, np.ndarray], decoded: tuple[np.ndarray, np.ndarray]) -> None:
        mask = region(original[1])
        self.ref.append(ratio_map(*original, mask))
        self.test.append(ratio_map(*decoded, mask))

    def report(self) -> dict:
        from skimage.metrics import structural_similarity
        valid = [np.isfinite(r) & np.isfinite(t) for r, t in zip(self.ref, self.test)]
        x = np.concatenate([r[v] for r, v in zip(self.ref, valid)]) if self.ref else np.zeros(0)
        y = np.concatenate([t[v] for t, v in zip(self.test, valid)]) if self.ref else np.zeros(0)
        lost = sum(int(np.isfinite(r).sum() - v.sum()) for r, v in zip(self.ref, valid))
        if x.size == 0:
            return {"pixels": 0, "psnr_db": None, "ssim": None, "pearson_r": None, "mean_ratio_ref": None,
                    "mean_ratio_test": None, "pixels_lost": lost}
        peak = float(x.max() - x.min())
        mse = float(np.mean((x - y) ** 2))
        ssim_sum = 0.0
        for r, t, v in zip(self.ref, self.test, valid):
            if not v.any() or min(r.shape) < 7:
                continue
            _, s = structural_similarity(np.where(v, r, 0.0), np.where(v, t, 0.0), data_range=peak or 1.0, full=True)
            ssim_sum += float(s[v].sum())
        same = np.array_equal(x, y)
        r_xy = 1.0 if same else (float(np.corrcoef(x, y)[0, 1]) if x.std() > 0 and y.std() > 0 else 0.0)
        db = psnr(mse, peak)
        return {"pixels": int(x.size), "psnr_db": None if np.isinf(db) else round(db, 3),
                "ssim": round(ssim_sum / x.size, 6) if not same else 1.0, "pearson_r": round(r_xy, 6),
                "mean_ratio_ref": float(f"{x.mean():.6g}"), "mean_ratio_test": float(f"{y.mean():.6g}"),
                "pixels_lost": lost}
