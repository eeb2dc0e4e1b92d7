"""Code one 2-D plane with a CompressAI model: shared latents, strip-wise transforms, a guarded entropy path.

Why this shape:
- Seams. Analysis and synthesis run over the whole plane in full-width strips whose inputs overlap by a halo, so
  the latents are (almost exactly) those of one pass over the plane; tiles only partition the entropy coding. No
  tile is coded alone, so no seam is coded in.
- Determinism (CompressAI #279). The entropy model's scales come out of a float network; if a decoder computes one
  of them a hair differently, it picks another CDF and decodes garbage from there on. Here the hyper-decoder and
  context model run in float64 on the CPU, and each tile stores CRC-32C of its CDF indexes and decoded symbols:
  a decoder that disagrees fails loudly instead of returning a wrong image.
- Memory. Only one strip's activations per thread exist at a time; the latent canvas is 1/256 of the plane.
"""
from __future__ import annotations

import contextlib
import copy
import math
from concurrent.futures import ThreadPoolExecutor

import google_crc32c
import numpy as np
import torch
import torch.nn.functional as F

from ...errors import MzcError
from .architectures import BufferedRansEncoder, RansDecoder, is_autoregressive, latent_channels, prior_kind
from .gained import GainedModel

STRIDE = 16  # pixels per latent
ALIGN = 64  # pixels per hyper-latent: plane and tiles are multiples of this
CONTEXT = 5  # masked-convolution kernel of the autoregressive families
STRIP_ROWS = 512  # analysis/synthesis strips: at most this high, and a plane of 128+ rows is at least two


def crc(array: torch.Tensor) -> int:
    return google_crc32c.value(np.ascontiguousarray(array.detach().cpu().numpy().astype("<i4")).tobytes())


class PlaneCoder:
    """Encode/decode float planes in [0, 1] with one model: entropy-coded in tiles of `tile` px, transformed in
    strips with `halo` px of context."""

    def __init__(self, net, tile: int = 1024, halo: int = 64):
        if tile % ALIGN or halo % STRIDE or tile <= 0 or halo < 0:
            raise MzcError(f"learned tiles must be multiples of {ALIGN} px and halos of {STRIDE} px")
        self.net, self.tile, self.halo = net, tile, halo
        self.gained = isinstance(net, GainedModel)  # variable rate: every call names its rate parameter
        self.kind = net.prior_kind if self.gained else prior_kind(net.mzc_arch)
        self.ar = not self.gained and is_autoregressive(net.mzc_arch)
        self.channels = net.M if self.gained else latent_channels(net)
        # the entropy path in float64: the only computations whose result must match across machines bit for bit
        self.h_s = copy.deepcopy(net.h_s).double() if hasattr(net, "h_s") else None
        self.ctx = copy.deepcopy(net.context_prediction).double() if self.ar else None
        self.ep = copy.deepcopy(net.entropy_parameters).double() if self.ar else None
        self.gains64 = copy.deepcopy(net).double() if self.gained else None

    def rate_gains(self, rate: float | None) -> dict | None:
        """Gain vectors at rate parameter t, in float64 (the entropy path's arithmetic); None for fixed-rate models."""
        if not self.gained:
            if rate is not None:
                raise MzcError("corrupt header: a rate parameter for a fixed-rate learned model")
            return None
        if rate is None or not 0 <= rate <= self.net.anchors - 1:
            raise MzcError(f"learned rate parameter {rate!r} outside 0..{self.net.anchors - 1}")
        m = self.gains64
        t = torch.tensor([float(rate)], dtype=torch.float64)
        with torch.no_grad():
            gains = {"g": m.gain(t), "ig": m.inv_gain(t)}
            if self.kind == "mean-scale":
                gains.update(hg=m.hyper_gain(t), ihg=m.hyper_inv_gain(t))
            else:
                gains.update(mu=m.channel_mean, sigma=m.channel_log_scale.exp())
        return gains

    # ---------------------------------------------------------------- geometry
    def tiles(self, height: int, width: int) -> list[tuple[int, int, int, int]]:
        """(y0, y1, x0, x1) in padded-plane pixels, row-major."""
        hp, wp = _up(height), _up(width)
        return [(y, min(y + self.tile, hp), x, min(x + self.tile, wp))
                for y in range(0, hp, self.tile) for x in range(0, wp, self.tile)]

    # ---------------------------------------------------------------- encode
    @torch.no_grad()
    def encode(self, plane: np.ndarray, reconstruct: bool = True, rate: float | None = None,
               refine_steps: int = 0) -> tuple[list[list], np.ndarray | None]:
        """Return the per-tile records and (if asked) the decoder's reconstruction of the plane (`rate`: the rate
        parameter of a variable-rate model; `refine_steps`: encoder-side latent search, refine.py)."""
        gains = self.rate_gains(rate)
        height, width = plane.shape
        x = _pad(torch.from_numpy(np.ascontiguousarray(plane, dtype=np.float32))[None, None])
        hp, wp = x.shape[-2:]
        latents = torch.empty((1, self.channels, hp // STRIDE, wp // STRIDE))

        def analyse(y0, y1, a0, a1):
            y = self.net.g_a(x[..., a0:a1, :])
            latents[..., y0 // STRIDE:y1 // STRIDE, :] = y[..., (y0 - a0) // STRIDE:(y1 - a0) // STRIDE, :]

        self._in_strips(analyse, hp)
        if refine_steps and gains:
            from .refine import refine
            latents = refine(self.net, latents, x, rate, refine_steps)
        records = []
        canvas = torch.zeros_like(latents)
        with single_threaded():  # the entropy path exactly as the decoder computes it
            for (y0, y1, x0, x1) in self.tiles(height, width):
                part = (..., slice(y0 // STRIDE, y1 // STRIDE), slice(x0 // STRIDE, x1 // STRIDE))
                code = self._code_gained if gains else self._code_latents
                record, canvas[part] = code(latents[part], *([gains] if gains else []))
                records.append(record)
        return records, self.synthesise(canvas, height, width) if reconstruct else None

    def _code_latents(self, y: torch.Tensor) -> tuple[list, torch.Tensor]:
        net = self.net
        if self.kind == "factorized":
            strings = net.entropy_bottleneck.compress(y)
            medians = net.entropy_bottleneck._get_medians().detach().reshape(1, -1, 1, 1)
            symbols = torch.round(y - medians).int()
            return [b"", strings[0], 0, crc(symbols)], (symbols.float() + medians)
        z = net.h_a(torch.abs(y) if self.kind == "scale" else y)
        z_strings = net.entropy_bottleneck.compress(z)
        z_hat = net.entropy_bottleneck.decompress(z_strings, z.shape[-2:])
        params = self.h_s(z_hat.double())
        y64 = y.double()
        if self.ar:
            y_string, symbols, indexes, y_hat = self._compress_ar(y64, params)
            return [z_strings[0], y_string, crc(indexes), crc(symbols)], y_hat.float()
        scales, means = (params, None) if self.kind == "scale" else params.chunk(2, 1)
        indexes = net.gaussian_conditional.build_indexes(scales)
        y_string = net.gaussian_conditional.compress(y64, indexes, means=means)[0]
        symbols = net.gaussian_conditional.quantize(y64, "symbols", means)
        y_hat = symbols.double() + (means if means is not None else 0)
        return [z_strings[0], y_string, crc(indexes), crc(symbols)], y_hat.float()

    def _code_gained(self, y: torch.Tensor, gains: dict) -> tuple[list, torch.Tensor]:
        """Variable rate: y times the gain, coded with the model's N(mu, sigma) of y scaled by the same gain."""
        net, gc = self.net, self.net.gaussian_conditional
        z_string = b""
        if self.kind == "mean-scale":
            z = (net.h_a(y).double() * gains["hg"]).float()
            z_strings = net.entropy_bottleneck.compress(z)
            z_hat = net.entropy_bottleneck.decompress(z_strings, z.shape[-2:])
            sigma, mu = self.h_s(z_hat.double() * gains["ihg"]).chunk(2, 1)
            z_string = z_strings[0]
        else:
            sigma, mu = gains["sigma"].expand_as(y).double(), gains["mu"].expand_as(y).double()
        y_g, mu_g = y.double() * gains["g"], mu * gains["g"]
        indexes = gc.build_indexes(sigma * gains["g"])
        y_string = gc.compress(y_g, indexes, means=mu_g)[0]
        symbols = gc.quantize(y_g, "symbols", mu_g)
        y_hat = (symbols.double() + mu_g) * gains["ig"]
        return [z_string, y_string, crc(indexes), crc(symbols)], y_hat.float()

    def _entropy_params(self, y_window: torch.Tensor, params_at: torch.Tensor):
        weight = self.ctx.weight * self.ctx.mask
        ctx_p = F.conv2d(y_window, weight, bias=self.ctx.bias)
        gp = self.ep(torch.cat((params_at, ctx_p), dim=1))
        scales, means = gp.chunk(2, 1)
        return scales.reshape(-1), means.reshape(-1)

    def _compress_ar(self, y: torch.Tensor, params: torch.Tensor):
        gc = self.net.gaussian_conditional
        pad = (CONTEXT - 1) // 2
        height, width = y.shape[-2:]
        y_hat = F.pad(torch.zeros_like(y), (pad, pad, pad, pad))
        symbols = torch.empty(y.shape, dtype=torch.int32)
        indexes = torch.empty(y.shape, dtype=torch.int32)
        for h in range(height):
            for w in range(width):
                scales, means = self._entropy_params(y_hat[..., h:h + CONTEXT, w:w + CONTEXT],
                                                     params[..., h:h + 1, w:w + 1])
                idx = gc.build_indexes(scales)
                q = torch.round(y[0, :, h, w] - means).int()
                symbols[0, :, h, w], indexes[0, :, h, w] = q, idx
                y_hat[0, :, h + pad, w + pad] = q.double() + means
        encoder = BufferedRansEncoder()
        # symbols in the order the decoder needs them: position by position, channels inside
        encoder.encode_with_indexes(symbols[0].permute(1, 2, 0).reshape(-1).tolist(),
                                    indexes[0].permute(1, 2, 0).reshape(-1).tolist(),
                                    gc.quantized_cdf.tolist(), gc.cdf_length.tolist(), gc.offset.tolist())
        return encoder.flush(), symbols, indexes, y_hat[..., pad:pad + height, pad:pad + width]

    # ---------------------------------------------------------------- decode
    @torch.no_grad()
    def decode(self, records: list, height: int, width: int, rate: float | None = None) -> np.ndarray:
        gains = self.rate_gains(rate)
        tiles = self.tiles(height, width)
        if len(records) != len(tiles):
            raise MzcError(f"corrupt chunk: {len(records)} learned tiles, expected {len(tiles)}")
        hp, wp = _up(height), _up(width)
        canvas = torch.zeros((1, self.channels, hp // STRIDE, wp // STRIDE))
        with single_threaded():  # the float64 entropy path too: its bits must not depend on the thread count
            for k, ((y0, y1, x0, x1), record) in enumerate(zip(tiles, records)):
                shape = ((y1 - y0) // STRIDE, (x1 - x0) // STRIDE)
                canvas[..., y0 // STRIDE:y1 // STRIDE, x0 // STRIDE:x1 // STRIDE] = self._decode_latents(
                    record, shape, k, gains)
        return self.synthesise(canvas, height, width)

    def _decode_latents(self, record, shape, k: int, gains: dict | None = None) -> torch.Tensor:
        if not (isinstance(record, (list, tuple)) and len(record) == 4 and isinstance(record[0], bytes)
                and isinstance(record[1], bytes) and all(isinstance(v, int) for v in record[2:])):
            raise MzcError("corrupt chunk: malformed learned tile record")
        if gains:
            return self._decode_gained(record, shape, k, gains)
        z_string, y_string, crc_idx, crc_sym = record
        net = self.net
        if self.kind == "factorized":
            indexes = net.entropy_bottleneck._build_indexes((1, self.channels, *shape))
            symbols = self._rans_decode(net.entropy_bottleneck, y_string, indexes)
            self._check(crc(symbols), crc_sym, "decoded symbols", k)
            medians = net.entropy_bottleneck._get_medians().detach().reshape(1, -1, 1, 1)
            return symbols.float() + medians
        z_shape = (1, net.entropy_bottleneck.channels, shape[0] // 4, shape[1] // 4)
        z_indexes = net.entropy_bottleneck._build_indexes(z_shape)
        z_medians = net.entropy_bottleneck._get_medians().detach().reshape(1, -1, 1, 1)
        z_hat = self._rans_decode(net.entropy_bottleneck, z_string, z_indexes).float() + z_medians
        params = self.h_s(z_hat.double())
        gc = net.gaussian_conditional
        if self.ar:
            return self._decompress_ar(y_string, params, shape, crc_idx, crc_sym, k).float()
        scales, means = (params, None) if self.kind == "scale" else params.chunk(2, 1)
        indexes = gc.build_indexes(scales)
        self._check(crc(indexes), crc_idx, "entropy-model indexes", k)
        symbols = self._rans_decode(gc, y_string, indexes)
        self._check(crc(symbols), crc_sym, "decoded symbols", k)
        return (symbols.double() + (means if means is not None else 0)).float()

    def _decode_gained(self, record, shape, k: int, gains: dict) -> torch.Tensor:
        z_string, y_string, crc_idx, crc_sym = record
        net, gc = self.net, self.net.gaussian_conditional
        y_shape = (1, self.channels, *shape)
        if self.kind == "mean-scale":
            z_shape = (1, net.entropy_bottleneck.channels, shape[0] // 4, shape[1] // 4)
            z_indexes = net.entropy_bottleneck._build_indexes(z_shape)
            z_medians = net.entropy_bottleneck._get_medians().detach().reshape(1, -1, 1, 1)
            z_hat = self._rans_decode(net.entropy_bottleneck, z_string, z_indexes).float() + z_medians
            sigma, mu = self.h_s(z_hat.double() * gains["ihg"]).chunk(2, 1)
        else:
            if z_string:
                raise MzcError("corrupt chunk: side information in a factorized learned tile")
            sigma, mu = gains["sigma"].expand(y_shape).double(), gains["mu"].expand(y_shape).double()
        indexes = gc.build_indexes(sigma * gains["g"])
        self._check(crc(indexes), crc_idx, "entropy-model indexes", k)
        symbols = self._rans_decode(gc, y_string, indexes)
        self._check(crc(symbols), crc_sym, "decoded symbols", k)
        return ((symbols.double() + mu * gains["g"]) * gains["ig"]).float()

    @staticmethod
    def _rans_decode(model, string: bytes, indexes: torch.Tensor) -> torch.Tensor:
        values = model.entropy_coder.decode_with_indexes(
            padded(string, indexes.numel()), indexes.reshape(-1).int().tolist(), model.quantized_cdf.tolist(),
            model.cdf_length.reshape(-1).int().tolist(), model.offset.reshape(-1).int().tolist())
        return torch.tensor(values, dtype=torch.int32).reshape(indexes.shape)

    def _decompress_ar(self, string: bytes, params, shape, crc_idx: int, crc_sym: int, k: int) -> torch.Tensor:
        gc = self.net.gaussian_conditional
        pad = (CONTEXT - 1) // 2
        height, width = shape
        y_hat = torch.zeros((1, self.channels, height + 2 * pad, width + 2 * pad), dtype=torch.float64)
        symbols = torch.empty((1, self.channels, height, width), dtype=torch.int32)
        indexes = torch.empty_like(symbols)
        decoder = RansDecoder()
        decoder.set_stream(padded(string, self.channels * height * width))
        cdf, lengths, offsets = gc.quantized_cdf.tolist(), gc.cdf_length.tolist(), gc.offset.tolist()
        for h in range(height):
            for w in range(width):
                scales, means = self._entropy_params(y_hat[..., h:h + CONTEXT, w:w + CONTEXT],
                                                     params[..., h:h + 1, w:w + 1])
                idx = gc.build_indexes(scales)
                q = torch.tensor(decoder.decode_stream(idx.tolist(), cdf, lengths, offsets), dtype=torch.int32)
                symbols[0, :, h, w], indexes[0, :, h, w] = q, idx
                y_hat[0, :, h + pad, w + pad] = q.double() + means
        self._check(crc(indexes), crc_idx, "entropy-model indexes", k)
        self._check(crc(symbols), crc_sym, "decoded symbols", k)
        return y_hat[..., pad:pad + height, pad:pad + width]

    @staticmethod
    def _check(value: int, stored: int, what: str, k: int) -> None:
        if value != stored:
            raise MzcError(f"learned decode mismatch in tile {k}: {what} differ from the encoder's (CRC "
                           f"{value:08x} != {stored:08x}); this machine computes the model differently or the "
                           f"data is damaged - nothing was returned")

    # ---------------------------------------------------------------- synthesis
    @torch.no_grad()
    def synthesise(self, canvas: torch.Tensor, height: int, width: int) -> np.ndarray:
        """g_s over the latent canvas in strips (see _in_strips), cropped and clamped to [0, 1]."""
        hp = canvas.shape[-2] * STRIDE
        out = np.empty((hp, canvas.shape[-1] * STRIDE), np.float32)

        def synthesise_strip(y0, y1, a0, a1):
            x = self.net.g_s(canvas[..., a0 // STRIDE:a1 // STRIDE, :])
            out[y0:y1] = x[0, 0, y0 - a0:y1 - a0].clamp_(0, 1).numpy()

        self._in_strips(synthesise_strip, hp)
        return out[:height, :width]

    def _in_strips(self, fn, hp: int) -> None:
        """Call fn(y0, y1, a0, a1) for full-width strips of strip_rows(hp) px, [a0, a1) = the strip plus `halo` px.

        Determinism: each strip is computed by one thread (torch set to 1 thread, oneDNN on where it exists) and
        the strips depend on the plane only, so the bits do not depend on torch's thread count or oneDNN switch
        (oneDNN's multi-threaded convolutions round differently per thread count: measured). Threads only decide
        how many strips run side by side: two strips of a 1 MP plane keep two cores busy."""
        rows = strip_rows(hp)
        strips = [(y, min(y + rows, hp), max(y - self.halo, 0), min(y + rows + self.halo, hp))
                  for y in range(0, hp, rows)]

        @torch.no_grad()  # grad mode is per thread
        def run(strip):
            # OpenMP's thread count is per thread too: a pool thread starts with the process default (all cores),
            # and a convolution split across threads rounds differently from one on a single thread (measured:
            # 1 run in 6 differed by 1e-8 under load before this line)
            torch.set_num_threads(1)
            fn(*strip)

        threads = torch.get_num_threads()
        with single_threaded():
            if threads > 1 and len(strips) > 1:
                with ThreadPoolExecutor(min(threads, len(strips))) as pool:
                    list(pool.map(run, strips))
            else:
                for strip in strips:
                    run(strip)


def strip_rows(hp: int) -> int:
    """Strip height for a padded plane of hp rows: half the plane (so two cores share even a small plane), rounded
    up to a multiple of STRIDE, at most STRIP_ROWS; one strip below 128 rows. Depends on the plane only."""
    if hp < 128:
        return hp
    return min(STRIP_ROWS, -(-hp // (2 * STRIDE)) * STRIDE)


@contextlib.contextmanager
def single_threaded():
    """torch on one thread, oneDNN on where it exists, restored afterwards (process-wide torch settings)."""
    threads, onednn = torch.get_num_threads(), torch.backends.mkldnn.enabled
    torch.set_num_threads(1)
    torch.backends.mkldnn.enabled = torch.backends.mkldnn.is_available()
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.backends.mkldnn.enabled = onednn


def padded(string: bytes, n_symbols: int) -> bytes:
    """The stream followed by zeros: CompressAI's rANS decoder reads 32-bit words without a bounds check, so a short
    or forged stream would read past its buffer (a crash, seen with a checksum-valid hostile file). Each symbol
    renormalises at most once, plus escape-coded (bypass) bits, whose count a stream can only raise while it has
    data, and which stop at zero bytes; the padding covers both."""
    return bytes(string) + bytes(8 * n_symbols + 16 * len(string) + 4096)


def _up(n: int) -> int:
    return max(ALIGN, math.ceil(n / ALIGN) * ALIGN)


def _pad(x: torch.Tensor) -> torch.Tensor:
    """Replicate the last row/column out to multiples of ALIGN (no hard edge for the transform to code)."""
    h, w = x.shape[-2:]
    ph, pw = _up(h) - h, _up(w) - w
    return F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x
