"""Encoder-side search (`--effort max`): refine a plane's latents against its own rate-distortion loss before coding.

The analysis transform is amortized: trained to be good on average, it is not the best latent for this image. A few
steps of gradient descent on the latents themselves (Yang et al., NeurIPS 2020, "Improving Inference for Neural
Image Compression"; here with straight-through rounding rather than stochastic Gumbel annealing, which measured no
better in a few dozen steps) lower lambda * D + R for this plane. Only the encoder changes: the decoder reads the
same kind of stream, so every file it writes decodes with any mzc.
"""
from __future__ import annotations

import torch

from .gained import GainedModel, ste_round

REFINE_STEPS = 40
REFINE_LR = 5e-3
MAX_PIXELS = 1 << 21  # the whole plane goes through the synthesis with gradients: memory grows with it


def refine(net: GainedModel, y: torch.Tensor, x: torch.Tensor, rate: float, steps: int = REFINE_STEPS) -> torch.Tensor:
    """Latents y (1, M, h, w) of the padded plane x (1, 1, 16h, 16w) improved for rate parameter `rate`."""
    if steps <= 0 or x.numel() > MAX_PIXELS:
        return y
    t = torch.tensor([float(rate)])
    lam = float(net.lmbda(t)) * 255 ** 2
    pixels = x.shape[-2] * x.shape[-1]
    best, best_loss = y.detach().clone(), loss_of(net, y, x, t, lam, pixels).item()
    y = y.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([y], lr=REFINE_LR)
    with torch.enable_grad():
        for _ in range(steps):
            opt.zero_grad()
            loss = loss_of(net, y, x, t, lam, pixels)
            loss.backward()
            opt.step()
            if loss.item() < best_loss:
                best, best_loss = y.detach().clone(), loss.item()
    return best


def loss_of(net: GainedModel, y: torch.Tensor, x: torch.Tensor, t: torch.Tensor, lam: float,
            pixels: int) -> torch.Tensor:
    """lambda * 255^2 * MSE + bits per pixel of latents y, with the rounding the coder will apply."""
    bottleneck = getattr(net, "entropy_bottleneck", None)
    if bottleneck is not None:
        bottleneck.eval()  # the side information is rounded (with its median) as coded, not noised
    mu, sigma, side = net.prior(y, t)
    g, ig = net.gain(t), net.inv_gain(t)
    y_g, mu_g = y * g, mu * g
    y_hat = ste_round(y_g - mu_g) + mu_g
    likelihood = net.gaussian_conditional._likelihood(y_hat, sigma * g, mu_g)
    likelihood = net.gaussian_conditional.likelihood_lower_bound(likelihood)
    bits = -torch.log2(likelihood).sum() + sum(-torch.log2(v).sum() for v in side.values())
    x_hat = net.g_s(y_hat * ig)
    return lam * (x_hat - x).pow(2).mean() + bits / pixels
