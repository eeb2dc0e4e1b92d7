r"""A learned wavelet codec that starts where JPEG 2000 is: CDF 9/7 lifting with learned corrections (iWave-like).

Why: the autoencoder families must learn an invertible transform from scratch, and on 2 CPU cores they stay far from
the fidelity 16-bit fluorescence needs (50-60 dB). A lifting scheme is invertible by construction whatever its
predictors compute, so this model starts as the CDF 9/7 wavelet of JPEG 2000 (its learned corrections start at zero)
and training only has to improve on it (Ma et al., "iWave", IEEE TMM 2020; Daubechies & Sweldens 1998).

    x -> L levels of 2-D lifting (rows, then columns; 4 steps + scaling each, + learned residual predictors)
      -> subbands c_b -> q_b = round(c_b / step_b(t)) -> rANS with N(0, sigma) per coefficient
    sigma of a detail subband at level l comes from a small CNN over what the decoder already has: the low-pass
    image LL_l (rebuilt from the coarser levels) and the subbands of level l decoded before it (HL, then LH, then HH)

step_b(t): a log step per subband at 8 anchors, interpolated in t like gain units (gained.py); t in [0, 7] is the
rate parameter, and lambda(t) is log-linear over the run's range as for the other variable-rate families. The
coarsest LL is coded as horizontal differences with one stored scale. Training: uniform noise for the rate, straight-
through rounding for the reconstruction. Coding (lifting_coding.py) runs the transform and the context CNNs in float64.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .gained import ANCHORS, SCALES_MIN, GainUnits, VariableRateModel, default_scales, ste_round

LEVELS = 5
CDF97 = (-1.586134342059924, -0.052980118572961, 0.882911075530934, 0.443506852043971)
K97 = 1.230174104914001  # the scaling that makes CDF 9/7's low and high bands unit-gain (JPEG 2000's K)
LAMBDA_RANGE = (0.0005, 64.0)
STEP_RANGE = (0.25, 0.0008)  # quantization step in [0, 1] image units at t = 0 and t = 7, before per-band weights
HIDDEN = 8
SUBBANDS = ("HL", "LH", "HH")
# L2 norm of the image a unit coefficient synthesises, per subband (finest details first, LL last), for the CDF 9/7
# start (learned predictors at zero): LiftingVR().synthesis_norms(), checked by tests/test_wavelet.py
CDF97_NORMS = (1.0113, 1.0113, 0.5202, 1.9968, 1.9968, 0.9672, 4.1834, 4.1834, 2.0793, 8.5341, 8.5341, 4.3005,
               17.1667, 17.1667, 8.6867, 33.9249)


class Predictor(nn.Module):
    """A learned residual for one lifting step: from the source band (and its next neighbour along the lifting
    axis) to a correction of the target band. The last layer starts at zero: the step starts as CDF 9/7's."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(2, HIDDEN, 3, padding=1), nn.LeakyReLU(0.1),
                                 nn.Conv2d(HIDDEN, 1, 3, padding=1))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, source: torch.Tensor, shifted: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([source, shifted], 1))


def _next(band: torch.Tensor) -> torch.Tensor:
    """band[n + 1] along the last axis, the end mirrored (symmetric extension)."""
    return torch.cat([band[..., 1:], band[..., -1:]], -1)


def _prev(band: torch.Tensor) -> torch.Tensor:
    """band[n - 1] along the last axis, the start mirrored."""
    return torch.cat([band[..., :1], band[..., :-1]], -1)


class Lifting1D(nn.Module):
    """One level of CDF 9/7 along the last axis, with four learned residual predictors."""

    def __init__(self):
        super().__init__()
        self.predictors = nn.ModuleList(Predictor() for _ in CDF97)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        even, odd = x[..., 0::2], x[..., 1::2]
        for k, coef in enumerate(CDF97):
            if k % 2 == 0:  # predict: odd from the even neighbours n and n + 1
                nxt = _next(even)
                odd = odd + coef * (even + nxt) + self.predictors[k](even, nxt)
            else:  # update: even from the odd neighbours n - 1 and n
                prv = _prev(odd)
                even = even + coef * (prv + odd) + self.predictors[k](odd, prv)
        return even / K97, odd * K97

    def inverse(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        even, odd = low * K97, high / K97
        for k in reversed(range(len(CDF97))):
            coef = CDF97[k]
            if k % 2 == 0:
                nxt = _next(even)
                odd = odd - coef * (even + nxt) - self.predictors[k](even, nxt)
            else:
                prv = _prev(odd)
                even = even - coef * (prv + odd) - self.predictors[k](odd, prv)
        return torch.stack([even, odd], -1).flatten(-2)


class Level(nn.Module):
    """One 2-D level: rows (along X), then columns (along Y) of both halves."""

    def __init__(self):
        super().__init__()
        self.rows, self.cols = Lifting1D(), Lifting1D()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict]:
        low, high = self.rows(x)
        ll, lh = (t.transpose(-1, -2) for t in self.cols(low.transpose(-1, -2)))
        hl, hh = (t.transpose(-1, -2) for t in self.cols(high.transpose(-1, -2)))
        return ll, {"HL": hl, "LH": lh, "HH": hh}

    def inverse(self, ll: torch.Tensor, bands: dict) -> torch.Tensor:
        low = self.cols.inverse(ll.transpose(-1, -2), bands["LH"].transpose(-1, -2)).transpose(-1, -2)
        high = self.cols.inverse(bands["HL"].transpose(-1, -2), bands["HH"].transpose(-1, -2)).transpose(-1, -2)
        return self.rows.inverse(low, high)


class Context(nn.Module):
    """log sigma of one detail subband from LL_l and the already-decoded siblings of its level (zeros where not
    yet decoded), with log(step) as an input so one net serves every rate."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(4, 24, 3, padding=1), nn.LeakyReLU(0.1), nn.Conv2d(24, 24, 3, padding=1),
                                 nn.LeakyReLU(0.1), nn.Conv2d(24, 3, 3, padding=1))

    def forward(self, ll: torch.Tensor, siblings: list[torch.Tensor], log_step: torch.Tensor, band: int):
        ctx = [ll] + siblings + [torch.zeros_like(ll)] * (2 - len(siblings)) + [log_step.expand_as(ll)]
        return self.net(torch.cat(ctx, 1))[:, band:band + 1]


class LiftingVR(VariableRateModel):
    """The variable-rate learned wavelet family (`wavelet-vr`); forward(x, t) for training."""
    arch = "wavelet-vr"
    prior_kind = "wavelet"

    def __init__(self, n: int = 0, m: int = 0, anchors: int = ANCHORS, lambdas=LAMBDA_RANGE):
        super().__init__(n, m, anchors, lambdas)
        self.levels = nn.ModuleList(Level() for _ in range(LEVELS))
        self.contexts = nn.ModuleList(Context() for _ in range(LEVELS))
        n_bands = 3 * LEVELS + 1
        self.log_steps = GainUnits(n_bands, anchors, math.log(STEP_RANGE[0]), math.log(STEP_RANGE[1]))
        with torch.no_grad():  # uniform steps in the image domain: each band's step over its synthesis norm
            self.log_steps.log_gain -= torch.log(torch.tensor(CDF97_NORMS))[None]
        self.log_ll_scale = nn.Parameter(torch.tensor([math.log(20.0)]))  # sigma of the coarsest LL's differences

    @torch.no_grad()
    def synthesis_norms(self, size: int = 256) -> torch.Tensor:
        """L2 norm of the image a unit coefficient in each subband synthesises (finest details first, LL last)."""
        zero = torch.zeros(1, 1, size, size)
        ll, details = self.analyse(zero)
        norms = []
        for lv in range(LEVELS):
            for name in SUBBANDS:
                bands = [{k: torch.zeros_like(v) for k, v in d.items()} for d in details]
                band = bands[lv][name]
                band[..., band.shape[-2] // 2, band.shape[-1] // 2] = 1.0
                norms.append(self.synthesise(torch.zeros_like(ll), bands).norm())
        unit = torch.zeros_like(ll)
        unit[..., unit.shape[-2] // 2, unit.shape[-1] // 2] = 1.0
        norms.append(self.synthesise(unit, [{k: torch.zeros_like(v) for k, v in d.items()} for d in details]).norm())
        return torch.stack(norms)

    def analyse(self, x: torch.Tensor) -> tuple[torch.Tensor, list[dict]]:
        details, ll = [], x
        for level in self.levels:
            ll, bands = level(ll)
            details.append(bands)
        return ll, details

    def synthesise(self, ll: torch.Tensor, details: list[dict]) -> torch.Tensor:
        for lv in reversed(range(LEVELS)):
            ll = self.levels[lv].inverse(ll, details[lv])
        return ll

    def quantized(self, v: torch.Tensor) -> torch.Tensor:
        """What the rate is measured on: noise while training, rounding otherwise."""
        return v + (torch.rand_like(v) - 0.5) if self.training else torch.round(v)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> dict:
        ll, details = self.analyse(x)
        steps = self.log_steps(t)
        ll_step = steps[:, -1:]
        q = self.quantized(ll / ll_step)
        bits = _bits(q - _prev_col(q), self.log_ll_scale.exp())
        rec = ste_round(ll / ll_step) * ll_step
        for lv in reversed(range(LEVELS)):
            decoded = []
            for b, name in enumerate(SUBBANDS):
                step = steps[:, 3 * lv + b:3 * lv + b + 1]
                c = details[lv][name]
                sigma = self.contexts[lv](rec, decoded, step.log(), b).exp() / step
                bits = bits + _bits(self.quantized(c / step), sigma)
                decoded.append(ste_round(c / step) * step)
            rec = self.levels[lv].inverse(rec, dict(zip(SUBBANDS, decoded)))
        return {"x_hat": rec, "bits": bits}

    def update(self, scale_table=None, force: bool = False, update_quantiles: bool = False) -> bool:
        """Freeze the CDF tables the range coder uses (the scale table's Gaussians)."""
        return self.gaussian_conditional.update_scale_table(default_scales() if scale_table is None else scale_table,
                                                            force=True)


def _prev_col(q: torch.Tensor) -> torch.Tensor:
    """q[..., n - 1] with 0 before the first column: the coarsest LL is coded as horizontal differences."""
    return torch.cat([torch.zeros_like(q[..., :1]), q[..., :-1]], -1)


def _bits(q: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """-log2 of the probability of the unit interval around q under N(0, sigma), summed per sample."""
    sigma = sigma.clamp_min(SCALES_MIN)
    p = torch.special.ndtr((q + 0.5) / sigma) - torch.special.ndtr((q - 0.5) / sigma)
    return -torch.log2(p.clamp_min(1e-9)).flatten(1).sum(1)
