"""A classic lossy codec plus a learned restoration after its decode (id `restored`, spec/FORMAT.md section 6.6).

Why: at 50-500x, JPEG 2000, AVIF and SPERR leave structured artifacts (ringing, blocks, blur) that a small network
trained on our own decoded/original pairs removes in part. The encoder decodes every chunk anyway; here it also runs
the network, fits one gain by least squares on that chunk, and keeps the restoration only where it lowers the
chunk's squared error (by 0.01 dB at least) - else the chunk decodes as the plain base. Costs a few bytes per chunk (`p.r`).

The network runs in exact integer arithmetic (restore_net.py), so the restored samples - and their digest - are the
same on every machine and thread count whenever the base decoder's are. No torch at decode.
"""
from __future__ import annotations

import functools
import os

import numpy as np

from ...errors import MzcError
from ..base import Codec, Prepared, SelfChecked, Tunable, checked
from ..registry import codecs, from_config, lookup, register
from . import restore_net as rn
from .zoo import HERE, manifest, sha256_file

DEFAULT_MODEL = "restore-v1"
# a chunk is restored only when that lowers its squared error by at least this (0.01 dB): the network costs a
# reader ~5 us per pixel on one core, not worth paying for an unmeasurable gain
MIN_GAIN = 10 ** (-0.01 / 10)


def bases() -> list[str]:
    """Ids of the codecs the network was trained after (those with a restoration family), J2K first."""
    return [cid for cid, cls in codecs().items() if getattr(cls, "restoration_family", None) is not None]


def restoration_models() -> list[dict]:
    """The manifest's `restoration` entries (name, file, sha256, recipe, training facts)."""
    return list(manifest().get("restoration", []))


@functools.lru_cache(maxsize=4)
def load_weights(name: str, sha256: str | None):
    """The integer weights of a shipped restoration model, its sha256 checked (against the file's, if given)."""
    entry = next((m for m in restoration_models() if m["name"] == name), None)
    if entry is None:
        raise MzcError(f"unknown restoration model {name!r} (this mzc ships "
                       f"{', '.join(m['name'] for m in restoration_models()) or 'none'})")
    path = os.path.join(HERE, entry["file"])
    actual = sha256_file(path)
    if actual != entry["sha256"] or (sha256 is not None and actual != sha256):
        raise MzcError(f"restoration model {name!r}: sha256 {actual[:16]}... does not match "
                       f"{'the file' if sha256 and actual == entry['sha256'] else 'the manifest'}")
    with np.load(path) as z:
        weights = [(z[f"w{k}"].astype(np.float64), z[f"b{k}"].astype(np.float64)) for k in range(len(rn.LAYERS))]
    rn.check_weights(weights)
    return weights, actual


@register
class Restored(Tunable, Prepared, SelfChecked, Codec):
    id = "restored"
    what = "a classic lossy codec + a learned restoration where it lowers a chunk's error (--codec restored:BASE)"
    grey_only = True

    def __init__(self, base: dict, model: str = DEFAULT_MODEL, sha256: str | None = None, **config):
        extra = {"sha256": sha256} if sha256 is not None else {}
        super().__init__(base=base, model=model, **extra, **config)
        if not isinstance(base, dict) or base.get("id") not in bases():
            raise MzcError(f"corrupt header: restored codec base must be one of {', '.join(bases())}")
        if not isinstance(model, str) or (sha256 is not None and not isinstance(sha256, str)):
            raise MzcError("corrupt header: bad restoration model entry")
        self.base, self.model, self.sha256 = from_config(base), model, sha256
        self.family = type(self.base).restoration_family

    # ------------------------------------------------------------------ naming, rate control
    @classmethod
    def named(cls, variant: str, request) -> "Restored":
        base_id, _, base_variant = (variant or bases()[0]).partition("+")
        if base_id not in bases():
            raise MzcError(f"--codec {cls.id}:{variant}: the base must be one of {', '.join(bases())}")
        return cls(base=lookup(base_id)[0].named(base_variant, request).config())

    @classmethod
    def variants(cls) -> str:
        return f"{cls.id}[:{'|'.join(bases())}]"

    @classmethod
    def bench_points(cls, ratios):
        return []  # measured by benchmarks/restoration.py (a network pass per chunk: too slow for every bench run)

    def _with_base(self, base: Codec) -> "Restored":
        return type(self)(**dict(self._config, base=base.config()))

    @property
    def knob_bounds(self):
        return self.base.knob_bounds

    @property
    def knob_log(self):
        return getattr(self.base, "knob_log", False)

    @property
    def knob(self):
        return self.base.knob

    def knob_guess(self, *args):
        return self.base.knob_guess(*args)

    def with_knob(self, knob: float) -> "Restored":
        return self._with_base(self.base.with_knob(knob))

    def for_search(self):
        """Trials size the base alone: restoration adds a few bytes per chunk and only ever lowers the error."""
        return self.base.for_search()

    def prepare(self, stats) -> "Restored":
        return self._with_base(self.base.prepare(stats)) if isinstance(self.base, Prepared) else self

    def bind(self) -> "Restored":
        _, sha = load_weights(self.model, None)
        return type(self)(**dict(self._config, sha256=sha))

    @property
    def reproducible(self) -> bool:
        return self.base.reproducible

    def native_chunk(self, params: dict) -> bool:
        bp = params.get("bp")
        return self.base.native_chunk(bp if isinstance(bp, dict) else {})

    def chunk_summary(self, params: list[dict]) -> dict:
        """For `mzc info`: the chunks the restoration runs on, with their strength and gain."""
        on = {i: p["r"] for i, p in enumerate(params) if isinstance(p, dict) and "r" in p}
        return {"restoration": f"{self.model}: on in {len(on)} of {len(params)} chunks",
                "restored_chunks": {str(i): {"q": r[0], "gain": r[1] / 64} for i, r in on.items()}}

    # ------------------------------------------------------------------ coding
    def encode(self, block):
        body, params, _ = self.encode_checked(block)
        return body, params

    def encode_checked(self, block: np.ndarray):
        body, bp = self.base.encode(block)
        decoded = self.base.decode(body, block.shape, block.dtype, bp)
        params = {"bp": bp}
        planes = _planes(decoded)
        if planes is None or "const" in bp or bp.get("raw"):
            return body, params, decoded
        orig = block.reshape(planes.shape).astype(np.float64)
        q = rn.strength(_rmse_u(orig, planes))
        weights, _ = load_weights(self.model, self.sha256)
        res = [self._residual(p, q, weights) for p in planes]
        gain = _gain(orig, planes, res, q)
        if gain <= 0:
            return body, params, decoded
        out = self._apply(planes, res, q, gain, block.dtype)
        before = np.sum((planes - orig) ** 2, dtype=np.float64)
        if np.sum((out - orig) ** 2, dtype=np.float64) > MIN_GAIN * before:
            return body, params, decoded
        params["r"] = [q, gain]
        return body, params, out.astype(block.dtype).reshape(block.shape)

    def decode(self, body, shape, dtype, params):
        bp = params.get("bp")
        if not isinstance(bp, dict):
            raise MzcError("corrupt chunk: restored chunk without base parameters")
        decoded = self.base.decode(body, shape, dtype, bp)
        r = params.get("r")
        if r is None:
            return decoded
        if (not isinstance(r, list) or len(r) != 2 or not all(isinstance(v, int) and not isinstance(v, bool)
                                                             for v in r) or not (0 <= r[0] <= 127 and 1 <= r[1] <= 255)):
            raise MzcError("corrupt chunk: bad restoration parameters")
        planes = _planes(decoded)
        if planes is None:
            raise MzcError("corrupt chunk: restoration on a chunk without 2-D planes")
        weights, _ = load_weights(self.model, self.sha256)
        q, gain = r
        out = self._apply(planes, [self._residual(p, q, weights) for p in planes], q, gain, np.dtype(dtype))
        return checked(out.astype(dtype).reshape(shape), shape, dtype, self.id)

    def _residual(self, plane: np.ndarray, q: int, weights):
        if plane.max() == plane.min():
            return None
        img, lo, hi = rn.features(plane, q)
        return rn.residual(img, q, self.family, weights), lo, hi

    @staticmethod
    def _apply(planes, res, q: int, gain: int, dtype) -> np.ndarray:
        info = np.iinfo(dtype)
        out = planes.astype(np.float64).copy()
        for k, r in enumerate(res):
            if r is not None:
                rint, lo, hi = r
                out[k] = np.clip(rn.restored(planes[k], rint, q, gain, lo, hi), info.min, info.max)
        return out


def _planes(decoded: np.ndarray) -> np.ndarray | None:
    """The chunk as planes over its last two axes (None when a plane is thinner than 2 pixels)."""
    if decoded.ndim < 2 or min(decoded.shape[-2:]) < 2:
        return None
    return decoded.reshape(-1, *decoded.shape[-2:])


def _rmse_u(orig: np.ndarray, planes: np.ndarray) -> float:
    """RMS decode error in units of each plane's decoded span (as the network was trained)."""
    spans = np.maximum(planes.max(axis=(1, 2)).astype(np.float64) - planes.min(axis=(1, 2)), 1.0)
    return float(np.sqrt(np.mean(((orig - planes) / spans[:, None, None]) ** 2)))


def _gain(orig, planes, res, q: int) -> int:
    """The least-squares gain on the network's correction, in 1/64 (1..255), or 0 when it does not help."""
    num = den = 0.0
    for k, r in enumerate(res):
        if r is None:
            continue
        rint, lo, hi = r
        c = rint * (float(hi - lo) / float(1 << (rn.FA + rn.error_exponent(q))))
        num += float(np.sum(c * (orig[k] - planes[k])))
        den += float(np.sum(c * c))
    if not den > 0 or not num > 0:
        return 0
    return int(np.clip(np.rint(64.0 * num / den), 1, 255))
