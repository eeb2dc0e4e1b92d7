"""Code one 2-D plane with the learned wavelet (lifting.py): the whole plane, coarse to fine, in float64.

Every number that chooses a CDF (the quantization steps, the low-pass images rebuilt level by level, the context
CNNs) is computed in float64 on one thread, by the encoder exactly as the decoder will; each plane's record stores
CRC-32C of all CDF indexes and of all decoded symbols, so a decoder that computes them differently stops with an
error instead of returning wrong pixels (the same guard as coding.py). The transform is invertible by construction,
so the reconstruction is the quantized coefficients' synthesis, nothing else.

    record = [[string of the coarsest LL's differences, string per detail subband (coarse to fine, HL LH HH)],
              crc of the indexes, crc of the symbols]
"""
from __future__ import annotations

import copy

import numpy as np
import torch

from ...errors import MzcError
from .coding import PlaneCoder, _pad, crc, single_threaded
from .lifting import LEVELS, SUBBANDS, _prev_col

N_STRINGS = 1 + 3 * LEVELS


class WaveletCoder:
    """Encode/decode float planes in [0, 1] with a learned wavelet model (whole plane, no tiles)."""

    def __init__(self, net, tile: int = 1024, halo: int = 64):
        self.net, self.tile, self.halo = net, tile, halo
        self.net64 = copy.deepcopy(net).double()
        self.gc = net.gaussian_conditional

    def steps(self, rate: float | None) -> torch.Tensor:
        if rate is None or not 0 <= rate <= self.net.anchors - 1:
            raise MzcError(f"learned rate parameter {rate!r} outside 0..{self.net.anchors - 1}")
        with torch.no_grad():
            return self.net64.log_steps(torch.tensor([float(rate)], dtype=torch.float64))

    # ---------------------------------------------------------------- encode
    @torch.no_grad()
    def encode(self, plane: np.ndarray, reconstruct: bool = True, rate: float | None = None,
               refine_steps: int = 0) -> tuple[list[list], np.ndarray | None]:
        steps = self.steps(rate)
        height, width = plane.shape
        x = _pad(torch.from_numpy(np.ascontiguousarray(plane, dtype=np.float32))[None, None]).double()
        coder = _Chain(self, steps)
        with single_threaded():
            ll, details = self.net64.analyse(x)
            rec = coder.low_pass(torch.round(ll / steps[:, -1:]))
            for lv in reversed(range(LEVELS)):
                decoded = []
                for b, name in enumerate(SUBBANDS):
                    c = details[lv][name]
                    decoded.append(coder.band(rec, lv, b, decoded, lambda step, c=c: torch.round(c / step)))
                rec = self.net64.levels[lv].inverse(rec, dict(zip(SUBBANDS, decoded)))
        out = rec[0, 0, :height, :width].clamp(0, 1).float().numpy() if reconstruct else None
        return [coder.record()], out

    # ---------------------------------------------------------------- decode
    @torch.no_grad()
    def decode(self, records: list, height: int, width: int, rate: float | None = None) -> np.ndarray:
        if not (isinstance(records, list) and len(records) == 1 and isinstance(records[0], list)
                and len(records[0]) == 3 and isinstance(records[0][0], list) and len(records[0][0]) == N_STRINGS
                and all(isinstance(s, bytes) for s in records[0][0])
                and all(isinstance(v, int) for v in records[0][1:])):
            raise MzcError("corrupt chunk: malformed learned wavelet record")
        strings, crc_idx, crc_sym = records[0]
        steps = self.steps(rate)
        hp, wp = _pad(torch.zeros(1, 1, height, width)).shape[-2:]
        shape = (1, 1, hp >> LEVELS, wp >> LEVELS)
        coder = _Chain(self, steps, strings)
        with single_threaded():
            diff = coder.take(torch.zeros(shape, dtype=torch.float64), coder.ll_sigma(shape))
            rec = coder.low_pass_from_differences(diff)
            for lv in reversed(range(LEVELS)):
                decoded = []
                for b in range(len(SUBBANDS)):
                    decoded.append(coder.band(rec, lv, b, decoded))
                rec = self.net64.levels[lv].inverse(rec, dict(zip(SUBBANDS, decoded)))
        coder.check(crc_idx, crc_sym)
        return rec[0, 0, :height, :width].clamp(0, 1).float().numpy()


class _Chain:
    """The coarse-to-fine walk both sides share: sigma from what is decoded so far, indexes, symbols, CRCs."""

    def __init__(self, coder: WaveletCoder, steps: torch.Tensor, strings: list[bytes] | None = None):
        self.coder, self.steps = coder, steps
        self.strings_in = list(strings) if strings is not None else None
        self.strings_out: list[bytes] = []
        self.indexes: list[torch.Tensor] = []
        self.symbols: list[torch.Tensor] = []

    def ll_sigma(self, shape) -> torch.Tensor:
        return self.coder.net64.log_ll_scale.exp().expand(shape)

    def code(self, q: torch.Tensor, sigma: torch.Tensor) -> None:
        indexes = self.coder.gc.build_indexes(sigma)
        self.strings_out.append(self.coder.gc.compress(q, indexes)[0])
        self.indexes.append(indexes.reshape(-1))
        self.symbols.append(q.reshape(-1).int())

    def take(self, like: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """Decode the next string with scales sigma into integers shaped like `like` (float64)."""
        if not self.strings_in:
            raise MzcError("corrupt chunk: learned wavelet record holds too few strings")
        indexes = self.coder.gc.build_indexes(sigma)
        q = PlaneCoder._rans_decode(self.coder.gc, self.strings_in.pop(0), indexes).reshape(like.shape)
        self.indexes.append(indexes.reshape(-1))
        self.symbols.append(q.reshape(-1).int())
        return q.double()

    def low_pass(self, q_ll: torch.Tensor) -> torch.Tensor:
        self.code(q_ll - _prev_col(q_ll), self.ll_sigma(q_ll.shape))
        return q_ll * self.steps[:, -1:]

    def low_pass_from_differences(self, diff: torch.Tensor) -> torch.Tensor:
        return torch.cumsum(diff, -1) * self.steps[:, -1:]

    def band(self, rec: torch.Tensor, lv: int, b: int, siblings: list, quantize=None) -> torch.Tensor:
        """Subband b of level lv (its siblings of the same level decoded before it): coded from quantize(step) on
        the encoder, read from the stream on the decoder."""
        step = self.steps[:, 3 * lv + b:3 * lv + b + 1]
        sigma = self.coder.net64.contexts[lv](rec, siblings, step.log(), b).exp() / step
        if quantize is not None:
            q = quantize(step)
            self.code(q, sigma)
        else:
            q = self.take(sigma, sigma)
        return q * step

    def record(self) -> list:
        return [self.strings_out, crc(torch.cat(self.indexes)), crc(torch.cat(self.symbols))]

    def check(self, crc_idx: int, crc_sym: int) -> None:
        if self.strings_in:
            raise MzcError("corrupt chunk: learned wavelet record holds too many strings")
        for value, stored, what in ((crc(torch.cat(self.indexes)), crc_idx, "entropy-model indexes"),
                                    (crc(torch.cat(self.symbols)), crc_sym, "decoded symbols")):
            if value != stored:
                raise MzcError(f"learned decode mismatch: {what} differ from the encoder's (CRC {value:08x} != "
                               f"{stored:08x}); this machine computes the model differently or the data is damaged")
