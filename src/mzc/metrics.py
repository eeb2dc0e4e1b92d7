"""Fidelity metrics, accumulated chunk by chunk so a report never needs the whole stack in memory.

PSNR is on the data range (max - min of the original), the number that means something for microscopy; the
dtype-range PSNR is reported beside it only as `psnr_dtype_db`, because it inflates results by tens of dB.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SSIM_WINDOW = 7  # as scikit-image's default


def dtype_range(dtype: np.dtype) -> float:
    dtype = np.dtype(dtype)
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        return float(info.max) - float(info.min)
    return 1.0  # float data: the data range is the only meaningful one


def identical(a: np.ndarray, b: np.ndarray) -> bool:
    """Bit-for-bit equality (NaN equals the same NaN, -0.0 differs from 0.0): what 'lossless' means."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype.kind == "f":
        a = np.ascontiguousarray(a).view(f"u{a.dtype.itemsize}")
        b = np.ascontiguousarray(b).view(f"u{b.dtype.itemsize}")
    return bool(np.array_equal(a, b))


def psnr(mse: float, peak: float) -> float:
    if mse <= 0:
        return math.inf
    if peak <= 0:
        return -math.inf
    return 10.0 * math.log10(peak * peak / mse)


SSIM_SAMPLE = 1 << 18  # pixels of a chunk its SSIM is measured on (the report's mean SSIM is an estimate beyond)
SSIM_BAND = 16  # rows of each sampled band


def ssim_sample(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Evenly spaced bands of SSIM_BAND rows of every plane, about SSIM_SAMPLE pixels in all, for chunks larger than
    that (else the chunks themselves): SSIM's seven filters cost several times the codec on a --max-error encode
    (issue 27). Measured on nuclei2d and foci2d with Gaussian noise: within 0.001 of the full mean SSIM above 0.8,
    within 0.003 at 0.3."""
    if a.ndim < 2 or a.size <= SSIM_SAMPLE or a.shape[-2] <= 2 * SSIM_BAND:
        return a, b
    a, b = a.reshape(-1, *a.shape[-2:]), b.reshape(-1, *b.shape[-2:])
    n_bands = max(1, SSIM_SAMPLE // (SSIM_BAND * a.shape[-1] * a.shape[0]))
    starts = np.linspace(0, a.shape[-2] - SSIM_BAND, min(n_bands, a.shape[-2] // SSIM_BAND)).astype(int)
    rows = np.concatenate([np.arange(s, s + SSIM_BAND) for s in starts])
    # bands side by side as planes of their own, so no window straddles two bands
    take = lambda x: x[:, rows].reshape(x.shape[0] * starts.size, SSIM_BAND, x.shape[-1])  # noqa: E731
    return take(a), take(b)


def ssim_sum(a: np.ndarray, b: np.ndarray, data_range: float) -> tuple[float, int]:
    """Sum of the local SSIM map over the 2-D planes of a block (last two axes), and its pixel count.

    Gaussian-free 7x7 uniform windows with sample covariance, as scikit-image's structural_similarity does by default.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim < 2:
        a, b = a.reshape(1, -1), b.reshape(1, -1)
    a = a.reshape(-1, *a.shape[-2:])
    b = b.reshape(-1, *b.shape[-2:])
    L = data_range if data_range > 0 else 1.0
    c1, c2 = (0.01 * L) ** 2, (0.03 * L) ** 2
    total, count = 0.0, 0
    for pa, pb in zip(a, b):
        win = min(SSIM_WINDOW, *pa.shape)
        size = (win, win)
        n = win * win
        cov_norm = n / (n - 1) if n > 1 else 1.0
        from scipy.ndimage import uniform_filter  # only when SSIM is measured: scipy costs 0.2 s to import
        ux, uy = uniform_filter(pa, size), uniform_filter(pb, size)
        vx = cov_norm * (uniform_filter(pa * pa, size) - ux * ux)
        vy = cov_norm * (uniform_filter(pb * pb, size) - uy * uy)
        vxy = cov_norm * (uniform_filter(pa * pb, size) - ux * uy)
        s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
        total += float(s.sum())
        count += s.size
    return total, count


@dataclass
class Fidelity:
    """Running sums over (original, decoded) pairs. `data_range` must be the whole original's max - min."""
    data_range: float
    dtype: str
    n: int = 0
    sse: float = 0.0
    max_abs: float = 0.0
    sx: float = 0.0
    sy: float = 0.0
    sxx: float = 0.0
    syy: float = 0.0
    sxy: float = 0.0
    ssim_total: float = 0.0
    ssim_count: int = 0
    max_sigma: float = 0.0  # noise-bounded files: largest |error| / sigma(original)

    def add(self, original: np.ndarray, decoded: np.ndarray) -> None:
        if identical(original, decoded):
            self._add_identical(original)
            return
        x = np.asarray(original, dtype=np.float64).ravel()
        y = np.asarray(decoded, dtype=np.float64).ravel()
        d = y - x
        self.n += x.size
        self.sse += float(d @ d)
        if x.size:
            self.max_abs = max(self.max_abs, float(np.abs(d).max()))
        self.sx += float(x.sum())
        self.sy += float(y.sum())
        self.sxx += float(x @ x)
        self.syy += float(y @ y)
        self.sxy += float(x @ y)
        t, c = ssim_sum(*ssim_sample(original, decoded), self.data_range)
        self.ssim_total += t
        self.ssim_count += c

    def _add_identical(self, original: np.ndarray) -> None:
        """Exact match (checked by the caller): the sums follow without the SSIM filters; SSIM is 1 by definition."""
        x = np.asarray(original, dtype=np.float64).ravel()
        count = x.size
        x = x[np.isfinite(x)]  # NaN/inf samples are equal to themselves but carry no moments
        s, ss = float(x.sum()), float(x @ x)
        self.sx += s
        self.sy += s
        self.sxx += ss
        self.syy += ss
        self.sxy += ss
        self.add_exact(count)

    def add_exact(self, count: int) -> None:
        """Count `count` pixels proven identical, without the moment sums: only for a file whose every chunk is exact
        (Pearson r is then 1 by definition), which keeps lossless encoding at codec speed."""
        self.n += count
        self.ssim_total += float(count)
        self.ssim_count += count

    def merge(self, other: "Fidelity") -> None:
        for name in ("n", "sse", "sx", "sy", "sxx", "syy", "sxy", "ssim_total", "ssim_count"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.max_abs = max(self.max_abs, other.max_abs)
        self.max_sigma = max(self.max_sigma, other.max_sigma)

    @property
    def mse(self) -> float:
        return self.sse / self.n if self.n else 0.0

    def pearson(self) -> float:
        if not self.n or self.sse == 0:
            return 1.0
        n = self.n
        cov = self.sxy - self.sx * self.sy / n
        vx = self.sxx - self.sx * self.sx / n
        vy = self.syy - self.sy * self.sy / n
        if vx <= 0 or vy <= 0:
            return 1.0 if self.sse == 0 else 0.0
        return float(cov / math.sqrt(vx * vy))

    def report(self) -> dict:
        return {
            "psnr_db": round_db(psnr(self.mse, self.data_range)),
            "psnr_dtype_db": round_db(psnr(self.mse, dtype_range(np.dtype(self.dtype)))),
            "ssim": round(self.ssim_total / self.ssim_count, 6) if self.ssim_count else 1.0,
            "max_abs_error": self.max_abs if not float(self.max_abs).is_integer() else int(self.max_abs),
            "pearson_r": round(self.pearson(), 8),
            "mse": self.mse,
        }


def round_db(value: float) -> float | None:
    """JSON has no infinity, and a string in a number's place breaks every script that compares it: samples equal to
    the original report PSNR null (their max_abs_error 0 says why)."""
    return None if math.isinf(value) and value > 0 else round(value, 3)
