"""CompressAI's six image-codec families rebuilt for one channel (first conv 1->N, last deconv N->1).

CompressAI's classes are 3-channel by construction; the rest of each network (GDN, hyperprior, context model) is
kept exactly, so training, `update()` and the entropy models are CompressAI's own. Importing this module imports torch.
"""
from __future__ import annotations

import warnings

with warnings.catch_warnings():  # compressai's import-time torch.jit.script FutureWarning is not the user's business
    warnings.simplefilter("ignore", FutureWarning)
    from compressai.ans import BufferedRansEncoder, RansDecoder
    from compressai.layers import ResidualBlockWithStride, subpel_conv3x3
    from compressai.losses import RateDistortionLoss
    from compressai.models import (
        Cheng2020Anchor,
        Cheng2020Attention,
        FactorizedPrior,
        JointAutoregressiveHierarchicalPriors,
        MeanScaleHyperprior,
        ScaleHyperprior,
    )
    from compressai.models.utils import conv, deconv

from ...errors import MzcError
from .zoo import FAMILY_NAMES

# re-exported: the one quiet import point of CompressAI's coder and loss
__all__ = ["FAMILIES", "BufferedRansEncoder", "RansDecoder", "RateDistortionLoss", "build", "is_autoregressive",
           "latent_channels", "prior_kind"]

# name -> (class, uses N and M, autoregressive context model, kind of latent prior)
FAMILIES = {
    "bmshj2018-factorized": (FactorizedPrior, True, False, "factorized"),
    "bmshj2018-hyperprior": (ScaleHyperprior, True, False, "scale"),
    "mbt2018-mean": (MeanScaleHyperprior, True, False, "mean-scale"),
    "mbt2018": (JointAutoregressiveHierarchicalPriors, True, True, "mean-scale"),
    "cheng2020-anchor": (Cheng2020Anchor, False, True, "mean-scale"),
    "cheng2020-attn": (Cheng2020Attention, False, True, "mean-scale"),
}


assert tuple(FAMILIES) == FAMILY_NAMES


def build(arch: str, n: int = 64, m: int = 96):
    """A fresh single-channel model of family `arch` with N (and M where the family has one) channels."""
    if arch not in FAMILIES:
        raise MzcError(f"unknown architecture {arch!r}: choose from {', '.join(FAMILIES)}")
    cls, has_m, _, _ = FAMILIES[arch]
    if n < 8 or (has_m and m < 8):
        raise MzcError(f"N and M must be at least 8, got N={n} M={m}")
    net = cls(N=n, M=m) if has_m else cls(N=n)
    if arch.startswith("cheng2020"):
        net.g_a[0] = ResidualBlockWithStride(1, n, stride=2)
        net.g_s[-1] = subpel_conv3x3(n, 1, 2)
    else:
        net.g_a[0] = conv(1, n, kernel_size=5, stride=2)
        net.g_s[-1] = deconv(n, 1, kernel_size=5, stride=2)
    net.mzc_arch = arch
    return net


def is_autoregressive(arch: str) -> bool:
    return FAMILIES[arch][2]


def prior_kind(arch: str) -> str:
    return FAMILIES[arch][3]


def latent_channels(net) -> int:
    return int(getattr(net, "M", None) or net.N)
