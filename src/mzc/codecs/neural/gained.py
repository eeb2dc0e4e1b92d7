r"""Variable-rate learned models: one network for every rate, steered by a continuous rate parameter t.

Gain units (Cui et al., CVPR 2021, "Asymmetric Gained Deep Image Compression With Continuous Rate Adaptation"):
the latents are multiplied channel by channel by a gain vector before rounding and by an inverse gain after, so a
larger gain means finer quantization, more bits and less error. K anchor gain vectors are learned; a continuous
t in [0, K-1] interpolates between neighbouring anchors in the log domain, which is what makes the rate continuous.
Training draws t per sample together with lambda(t), log-linear between the run's lambda_min and lambda_max, so
one run trains the whole curve and rate grows with t.

Dataflow (mean-scale family, `mbt2018-mean-vr`):

    x -> g_a -> y ---------------------------------> * g(t) -> Q -> y_g^ -> * ig(t) -> g_s -> x^
              \-> h_a -> z -> * hg(t) -> Q -> z^ -> * ihg(t) -> h_s -> (mu, sigma)     (y_g coded with mu*g, sigma*g)

The hyper-decoder predicts the distribution of the ungained y; a Gaussian N(mu, sigma) of y is N(mu g, sigma g) of
y g, so the entropy model follows the gain exactly. `bmshj2018-factorized-vr` has no hyperprior: each latent channel
has a learned Gaussian (mu_c, sigma_c), gained the same way: a factorized prior that stays exact at every rate
(CompressAI's non-parametric bottleneck density cannot follow a continuous gain).
"""
from __future__ import annotations

import math
import warnings

import torch
from torch import nn

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)
    from compressai.entropy_models import EntropyBottleneck, GaussianConditional
    from compressai.layers import GDN
    from compressai.models.base import CompressionModel
    from compressai.models.utils import conv, deconv

from .zoo import VARIABLE_RATE_FAMILIES

ANCHORS = 8  # anchor gain vectors: the rate parameter t runs over [0, ANCHORS - 1]
LAMBDA_RANGE = (0.004, 16.0)  # CompressAI's MSE convention (lambda * 255^2 * mse + bpp): ~30 to ~60 dB on [0, 1]
SCALES_MIN, SCALES_MAX, SCALES_LEVELS = 0.11, 256.0, 64


def default_scales() -> torch.Tensor:
    return torch.exp(torch.linspace(math.log(SCALES_MIN), math.log(SCALES_MAX), SCALES_LEVELS))


def lambda_of(t: torch.Tensor, lambdas: tuple[float, float], anchors: int = ANCHORS) -> torch.Tensor:
    """lambda(t), log-linear from lambda_min at t = 0 to lambda_max at t = K - 1."""
    lo, hi = math.log(lambdas[0]), math.log(lambdas[1])
    return torch.exp(lo + (hi - lo) * t / (anchors - 1))


def ste_round(x: torch.Tensor) -> torch.Tensor:
    """Rounding with a straight-through gradient: the synthesis sees what the decoder will see."""
    return (torch.round(x) - x).detach() + x


class GainUnits(nn.Module):
    """K anchor gain vectors over `channels`, interpolated exponentially at a continuous t (per sample)."""

    def __init__(self, channels: int, anchors: int, log_lo: float, log_hi: float):
        super().__init__()
        self.anchors = anchors
        self.log_gain = nn.Parameter(torch.linspace(log_lo, log_hi, anchors)[:, None].repeat(1, channels))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        t = t.clamp(0, self.anchors - 1)
        i = t.floor().clamp(max=self.anchors - 2).long()
        f = (t - i)[:, None]
        log_gain = self.log_gain[i] * (1 - f) + self.log_gain[i + 1] * f
        return log_gain.exp()[:, :, None, None]


def gain_pair(channels: int, anchors: int, lambdas: tuple[float, float]) -> tuple[GainUnits, GainUnits]:
    """Encoder gain and (asymmetric) decoder inverse gain, started at sqrt(lambda / lambda_mid) and its inverse:
    at high rate the error is proportional to the step squared, and lambda to its inverse."""
    half = 0.25 * (math.log(lambdas[1]) - math.log(lambdas[0]))
    return GainUnits(channels, anchors, -half, half), GainUnits(channels, anchors, half, -half)


class VariableRateModel(CompressionModel):
    """What every variable-rate family shares: its rate parameter's anchors and lambda range, and the Gaussian
    conditional whose CDF tables the range coder uses (CompressionModel: its load_state_dict resizes the CDF
    buffers a frozen file brings)."""
    arch: str

    def __init__(self, n: int, m: int, anchors: int, lambdas: tuple[float, float]):
        super().__init__()
        self.N, self.M, self.anchors, self.lambdas = n, m, anchors, tuple(lambdas)
        self.gaussian_conditional = GaussianConditional(None)
        self.gaussian_conditional.update_scale_table(default_scales(), force=True)

    @property
    def mzc_arch(self) -> str:
        return self.arch

    def lmbda(self, t: torch.Tensor) -> torch.Tensor:
        return lambda_of(t, self.lambdas, self.anchors)


class GainedModel(VariableRateModel):
    """Shared parts of the gain-unit families: transforms for one channel and the gains."""

    def __init__(self, n: int, m: int, anchors: int, lambdas: tuple[float, float]):
        super().__init__(n, m, anchors, lambdas)
        self.g_a = nn.Sequential(conv(1, n), GDN(n), conv(n, n), GDN(n), conv(n, n), GDN(n), conv(n, m))
        self.g_s = nn.Sequential(deconv(m, n), GDN(n, inverse=True), deconv(n, n), GDN(n, inverse=True),
                                 deconv(n, n), GDN(n, inverse=True), deconv(n, 1))
        self.gain, self.inv_gain = gain_pair(m, anchors, self.lambdas)

    def prior(self, y: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """(mu, sigma) of the ungained y and the likelihoods of any side information."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> dict:
        y = self.g_a(x)
        mu, sigma, side = self.prior(y, t)
        g, ig = self.gain(t), self.inv_gain(t)
        y_g, mu_g = y * g, mu * g
        _, y_likelihoods = self.gaussian_conditional(y_g, sigma * g, means=mu_g)
        y_hat = ste_round(y_g - mu_g) + mu_g  # noise for the rate, rounding for the synthesis
        x_hat = self.g_s(y_hat * ig)
        return {"x_hat": x_hat, "likelihoods": {"y": y_likelihoods, **side}}

    def update(self, scale_table=None, force: bool = False, update_quantiles: bool = False) -> bool:
        """Freeze the CDF tables the range coder uses, with this module's scale table."""
        return super().update(default_scales() if scale_table is None else scale_table, force, update_quantiles)


class GainedMeanScale(GainedModel):
    """mbt2018-mean (Minnen et al. 2018, mean-scale hyperprior without context model) with gain units."""
    arch = "mbt2018-mean-vr"
    prior_kind = "mean-scale"

    def __init__(self, n: int = 64, m: int = 96, anchors: int = ANCHORS, lambdas=LAMBDA_RANGE):
        super().__init__(n, m, anchors, lambdas)
        self.entropy_bottleneck = EntropyBottleneck(n)
        self.h_a = nn.Sequential(conv(m, n, stride=1, kernel_size=3), nn.LeakyReLU(inplace=True),
                                 conv(n, n), nn.LeakyReLU(inplace=True), conv(n, n))
        self.h_s = nn.Sequential(deconv(n, m), nn.LeakyReLU(inplace=True), deconv(m, m * 3 // 2),
                                 nn.LeakyReLU(inplace=True), conv(m * 3 // 2, m * 2, stride=1, kernel_size=3))
        self.hyper_gain, self.hyper_inv_gain = gain_pair(n, anchors, self.lambdas)

    def prior(self, y, t):
        z = self.h_a(y) * self.hyper_gain(t)
        z_hat, z_likelihoods = self.entropy_bottleneck(z)
        sigma, mu = self.h_s(z_hat * self.hyper_inv_gain(t)).chunk(2, 1)
        return mu, sigma, {"z": z_likelihoods}


class GainedFactorized(GainedModel):
    """bmshj2018-factorized (Balle et al. 2018) with gain units and a learned Gaussian per latent channel."""
    arch = "bmshj2018-factorized-vr"
    prior_kind = "factorized"

    def __init__(self, n: int = 64, m: int = 96, anchors: int = ANCHORS, lambdas=LAMBDA_RANGE):
        super().__init__(n, m, anchors, lambdas)
        self.channel_mean = nn.Parameter(torch.zeros(1, m, 1, 1))
        self.channel_log_scale = nn.Parameter(torch.zeros(1, m, 1, 1))

    def prior(self, y, t):
        return self.channel_mean.expand_as(y), self.channel_log_scale.exp().expand_as(y), {}


GAINED = {cls.arch: cls for cls in (GainedMeanScale, GainedFactorized)}
assert set(GAINED) <= set(VARIABLE_RATE_FAMILIES)
