"""Hybrid codec: a classic base (JPEG 2000, plane by plane, at a high ratio) plus a neural field of the residual.

The base spends `base_share` of the chunk's byte budget (its one quality level found by search on the chunk itself);
the field gets the rest and codes what the base missed. Decoding any region or scale samples the base (linear
resampling) and evaluates the field at the same coordinates.

At high ratios the residual is mostly noise, which a field of a few kilobytes cannot code: measured on the STP stack,
a field over a J2K or SPERR-3D base *raised* the error (512x: 41.0 dB against J2K's own 46.9 dB). So every chunk is
also coded as the base alone at the whole budget, and the smaller squared error of the two is kept (a chunk without
a field stores `field` = nil): hybrid is never worse than its base, and says per chunk when the field paid.
"""
from __future__ import annotations

import math

import msgpack
import numpy as np

from ...errors import MzcError
from ...resample import resample
from ...targets import Target, search_knob
from ...targets import trial as j2k_trial
from ..base import Budgeted, Codec, RegionDecoder, constant_chunk, constant_value
from ..classic import J2K
from ..registry import register
from .field import evaluate, unpack
from .inr import Inr, chunk_bounds, every_pixel, field_extent, field_positions

DEFAULT_BASE_SHARE = 0.5
MAX_BASE_SHARE = 0.8


@register
class Hybrid(Budgeted, RegionDecoder, Codec):
    id = "hybrid"
    what = "JPEG 2000 base + a neural field of its residual, sized by -q Nx"
    grey_only = True

    def __init__(self, base: str = J2K.id, base_share: float = DEFAULT_BASE_SHARE, **inr_config):
        if base != J2K.id:
            raise MzcError(f"corrupt header: unknown hybrid base codec {base!r}")
        if isinstance(base_share, bool) or not isinstance(base_share, (int, float)) or not 0 < base_share < 1:
            raise MzcError("corrupt header: hybrid base_share must be between 0 and 1")
        self.field = Inr(**inr_config)
        super().__init__(base=base, base_share=float(base_share), **self.field.config_items())
        self.base_share = float(base_share)

    @classmethod
    def named(cls, variant: str, request) -> "Hybrid":
        from .guidance import check_guide
        if variant:
            raise MzcError(f"--codec hybrid:{variant}: the hybrid codec has no variants")
        check_guide(request.guide)
        return cls(guide=request.guide)

    def warm_up(self) -> None:
        from .field_fit import warm_up
        warm_up()

    def with_budget(self, bpe: float, seconds_per_element: float | None = None) -> "Hybrid":
        inr = self.field.with_budget(bpe, seconds_per_element)
        return Hybrid(base=J2K.id, base_share=self.base_share, **inr.config_items())

    def config(self) -> dict:
        return {"id": self.id, **self._config}

    def encode(self, block: np.ndarray) -> tuple[bytes, dict]:
        const = constant_chunk(block)
        if const is not None:
            return const
        if self.field.bpe is None:
            raise MzcError("hybrid codec: no byte budget (give -q Nx)")
        extent = field_extent(block.shape)
        vol = block.reshape(extent if len(extent) == 3 else (1, *extent))
        planes = [p for p in vol]
        budget = self.field.bpe * block.size
        lo, span = chunk_bounds(block)
        base_budget = budget * self.base_share
        try:
            trial = search_knob(J2K(), planes, Target("ratio", 2.0), base_budget, span)
        except MzcError:  # small planes: J2K's smallest stream exceeds the share; take it if the field still fits
            trial = j2k_trial(J2K(), planes, J2K.knob_bounds[0])
            if trial.body_bytes > budget * MAX_BASE_SHARE:
                raise MzcError(f"hybrid: the smallest JPEG 2000 base ({trial.body_bytes} bytes) leaves no room for "
                               f"the field in this chunk's {budget:.0f} bytes; use --codec inr or a lower "
                               "ratio") from None
        knob, base_bytes, base = _base(planes, trial.knob)
        residual = (vol.astype(np.float32) - base.astype(np.float32)).reshape(extent)
        rest = budget - len(base_bytes) - 32
        r_lo, r_span = float(residual.min()), max(float(residual.max() - residual.min()), 1.0)
        field = self.field.fit_values(residual, r_lo, r_span, rest, weights_of=block)
        with_field = msgpack.packb({"knob": knob, "base": base_bytes, "field": field}, use_bin_type=True)
        alone = self._base_alone(planes, budget, span)
        if alone is not None and _sse(self, alone, block) <= _sse(self, with_field, block):
            return alone, {}
        return with_field, {}

    def _base_alone(self, planes: list[np.ndarray], budget: float, span: float) -> bytes | None:
        """The chunk as the base alone at the whole budget (None when even its smallest stream does not fit)."""
        try:
            trial = search_knob(J2K(), planes, Target("ratio", 2.0), budget - 32, span)
        except MzcError:
            return None
        knob, base_bytes, _ = _base(planes, trial.knob)
        return msgpack.packb({"knob": knob, "base": base_bytes, "field": None}, use_bin_type=True)

    def decode(self, body, shape, dtype, params) -> np.ndarray:
        return self.decode_at(body, shape, dtype, params, every_pixel(shape))

    def decode_at(self, body, shape, dtype, params, positions):
        dtype = np.dtype(dtype)
        out_shape = tuple(len(p) for p in positions)
        const = constant_value(body, params, out_shape, dtype)
        if const is not None:
            return const
        try:
            m = msgpack.unpackb(bytes(body), raw=False, strict_map_key=True)
            base_list = msgpack.unpackb(m["base"], raw=False, strict_map_key=True)
            knob = float(m["knob"])
            field_body = m["field"]
        except Exception:  # noqa: BLE001 - msgpack, a missing key or a bad number: all one malformed payload
            raise MzcError("corrupt chunk: hybrid payload is malformed") from None
        extent = field_extent(shape)
        depth = extent[0] if len(extent) == 3 else 1
        if not isinstance(base_list, list) or len(base_list) != depth or not math.isfinite(knob) or \
                not (field_body is None or isinstance(field_body, bytes)):
            raise MzcError("corrupt chunk: hybrid base does not match the chunk")
        fpos = field_positions(shape, positions)
        planes_needed = fpos[0].astype(np.intp) if len(extent) == 3 else np.zeros(1, np.intp)
        j2k = J2K(knob=knob)
        plane_shape = extent[-2:]
        base = []
        for k in planes_needed:
            entry = base_list[int(k)]
            if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], dict)):
                raise MzcError("corrupt chunk: hybrid base entry is malformed")
            plane = j2k.decode(entry[0], plane_shape, dtype, entry[1]).astype(np.float32)
            base.append(resample(plane, fpos[-2:]))
        base_v = np.stack(base).reshape(tuple(len(p) for p in fpos))
        r = 0.0
        if field_body is not None:
            f = unpack(field_body, extent)
            r = evaluate(f, fpos).astype(np.float64) * f.scale + f.offset
        info = np.iinfo(dtype)
        values = np.clip(np.rint(base_v.astype(np.float64) + r), info.min, info.max).astype(dtype)
        return values.reshape(out_shape)


def _base(planes: list[np.ndarray], knob: float) -> tuple[float, bytes, np.ndarray]:
    """J2K at `knob`, plane by plane: (knob, the stored base bytes, the decoded base volume)."""
    j2k = J2K(knob=knob)
    coded = [j2k.encode(p) for p in planes]
    base = np.stack([j2k.decode(b, p.shape, p.dtype, prm) for (b, prm), p in zip(coded, planes)])
    return float(knob), msgpack.packb([[b, prm] for b, prm in coded], use_bin_type=True), base


def _sse(codec: Hybrid, body: bytes, block: np.ndarray) -> float:
    """Squared error of a candidate body, decoded exactly as a reader will."""
    d = codec.decode(body, block.shape, block.dtype, {}).astype(np.float64) - block.astype(np.float64)
    return float(np.vdot(d, d))
