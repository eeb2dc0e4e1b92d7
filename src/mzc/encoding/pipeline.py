"""Encode a TIFF into an .mzc file, streaming chunk by chunk, and measure what was lost on the way.

Each chunk is read from the memory-mapped TIFF, coded, decoded again and compared, in worker processes; only a few
chunks are in flight at once, so memory does not grow with the stack.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import time
from dataclasses import dataclass, field
from typing import BinaryIO, Callable

import numpy as np

from . import __version__
from .codecs import from_config
from .bounds import Bound
from .codecs.base import Codec
from .codecs.bounded import Bounded
from .codecs.lossless import Lossless
from .codecs.nearlossless import NearLossless
from .codecs.noise import EFFORTS, Noise
from .container import RECORD_OVERHEAD, REPORT, Writer, pack_msg, unpack_msg
from .errors import MzcError
from .metrics import Fidelity, identical
from .parallel import dask_map, pmap, useful_workers
from .targets import RATIO_TOLERANCE, Target, choose_point, parse_quality, sample_indices, search_knob
from .noise import fit as fit_noise, parse_model
from .stats import scan
from .tiling import Grid, default_chunks, spatial_axes
from .volume import Volume

AUTO_CANDIDATES = ("j2k", "avif", "sperr")
LOSSY_IDS = ("j2k", "htj2k", "jxl", "avif", "sperr")
DEFAULT_LOSSY_TARGET = "50dB"
INDEX_ENTRY_BYTES = 24
CHUNK_META_BYTES = 16  # u32 length + msgpack {"i": n, "p": {...}} for typical chunks


@dataclass
class EncodeOptions:
    codec: str = "auto"
    quality: str | None = None
    max_error: float | None = None
    noise: float | None = None  # --noise K: every pixel within K sigma of the original
    noise_model: str | None = None  # --noise-model a,b: a calibrated model instead of the fitted one
    effort: str = "fast"  # bounded/noise: "max" also tries JPEG XL effort 7 for the index images
    lossless: bool = False
    chunks: tuple[int, ...] | None = None
    workers: int = 1
    check: bool = True  # decode every chunk back and compare (False: lossless trusts its codec, lossy reports no fidelity)
    guide: str | None = None  # inr/hybrid: loss weighting toward what an analysis uses (guidance.py)
    time_budget: float | None = None  # inr/hybrid: wall-clock seconds for fitting the whole file
    progress: Callable[[int, int], None] | None = field(default=None, repr=False)
    client: object = field(default=None, repr=False)  # a dask.distributed Client: chunks coded on its cluster


@functools.lru_cache(maxsize=8)
def _codec(config_packed: bytes) -> Codec:
    return from_config(unpack_msg(config_packed, "codec config"))


def encode_chunk(config_packed: bytes, block: np.ndarray, data_range: float, lossless: bool, check: bool = True):
    """Worker: code one chunk, decode it back (unless a bit-exact codec is trusted), return (body, params, sums)."""
    codec = _codec(config_packed)
    body, params = codec.encode(block)
    fid = Fidelity(data_range, block.dtype.str)
    if not check:
        if lossless:
            fid.add_exact(block.size)
        return body, params, fid
    back = codec.decode(body, block.shape, block.dtype, params)
    bound = getattr(codec, "bound", None)
    if bound is not None:  # a guarantee is checked on every pixel, whatever the codec claims
        channel = params.get("c", 0)
        err = np.abs(back.astype(np.float64) - block.astype(np.float64))
        if np.any(err > bound.allowed(block, channel)):
            raise MzcError(f"internal error: {codec.id} chunk exceeded its bound ({bound.describe()})")
        if bound.models:
            fid.max_sigma = max(fid.max_sigma, bound.sigma_units(block, back, channel))
    if lossless:
        if not identical(block, back):
            raise MzcError("internal error: lossless chunk did not round-trip")
        fid.add_exact(block.size)
    else:
        fid.add(block, back)
    return body, params, fid


def choose_codec(vol: Volume, opts: EncodeOptions, bound: Bound | None = None) -> tuple[Codec, Target | None]:
    """Map the CLI's knobs onto one codec instance (not yet fitted to the data) and an optional target.

    With a bound (--max-error with a named lossy codec, --noise): the codec returned is the base that Encoding.fit
    wraps in `bounded`; its target is the -q given, or None (the base quality that makes the smallest file)."""
    cid = opts.codec or "auto"
    if opts.noise is not None:
        if cid in ("auto", "noise"):
            if opts.quality:
                raise MzcError("--noise K fixes the quality: -q applies only to a lossy base (e.g. --codec j2k)")
            return Noise(bound=bound.config(), effort=opts.effort), None
        return bounded_base(vol, cid, opts)
    if cid == "noise":
        raise MzcError("--codec noise needs --noise K")
    if opts.max_error is not None and cid not in ("auto", "nearlossless", "lossless") and not opts.lossless:
        return bounded_base(vol, cid, opts)
    if (opts.guide is not None or opts.time_budget is not None) and cid not in NEURAL_FIELD_IDS:
        raise MzcError("--guide and --time-budget apply to --codec inr, inr:siren and hybrid")
    if opts.lossless or cid == "lossless":
        if opts.quality or opts.max_error is not None:
            raise MzcError("--lossless cannot be combined with -q or --max-error")
        return Lossless(), None
    if opts.max_error is not None:
        if opts.quality:
            raise MzcError("-q and --max-error are alternatives: give one")
        if vol.dtype.kind not in "u":
            raise MzcError(f"--max-error needs unsigned integer data, not {vol.dtype.name}")
        if not opts.max_error >= 0 or not math.isfinite(opts.max_error):
            raise MzcError(f"--max-error must be a finite number >= 0, got {opts.max_error:g}")
        # integer data: |error| <= 2.5 is |error| <= 2; beyond the dtype's range every bound is the same
        return NearLossless(max_error=int(min(opts.max_error, np.iinfo(vol.dtype).max))), None
    if cid == "nearlossless":
        raise MzcError("--codec nearlossless needs --max-error E")
    if opts.quality is None and cid == "auto":
        return Lossless(), None
    if cid == "learned" or cid.startswith("learned:"):
        return learned_codec(vol, cid.partition(":")[2], opts.quality)
    if cid in NEURAL_FIELD_IDS:
        return field_codec(vol, cid, opts)
    target = parse_quality(opts.quality or DEFAULT_LOSSY_TARGET)
    if cid != "auto" and cid not in LOSSY_IDS:
        raise MzcError(f"unknown codec {cid!r}: choose from auto, lossless, {', '.join(LOSSY_IDS)}")
    if vol.dtype.str not in ("|u1", "<u2"):
        raise MzcError(f"lossy codecs take uint8/uint16 data, not {vol.dtype.name} (use --lossless)")
    return from_config({"id": cid}) if cid != "auto" else None, target


def bounded_base(vol: Volume, cid: str, opts: EncodeOptions) -> tuple[Codec, Target | None]:
    """The lossy base of a bounded file: the codec named, at the -q given (or chosen by Encoding.fit)."""
    from .codecs.bounded import UNSTABLE_BASES
    if cid in UNSTABLE_BASES:
        raise MzcError(f"--codec {cid} cannot carry an error bound: its decoder is not bit-identical across "
                       f"machines (use inr or hybrid)")
    if cid in ("lossless", "nearlossless") or opts.lossless:
        raise MzcError("an error bound needs a lossy codec (or --codec auto)")
    base, target = choose_codec(vol, dataclasses.replace(opts, max_error=None, noise=None, noise_model=None))
    if base is None:
        raise MzcError("--codec auto with a bound: name the lossy base (e.g. --codec j2k) or drop -q")
    return base, target if opts.quality or base.budgeted else None


NEURAL_FIELD_IDS = ("inr", "inr:grid", "inr:siren", "hybrid")
DEFAULT_FIELD_TARGET = "64x"
FIELD_RATIO_TOLERANCE = 0.05
BASE_SEARCH_STEPS = 7  # golden-section steps over a base codec's knob: the bracket shrinks to 3% of its width


VOLATILE_REPORT_KEYS = ("encode_seconds",)


def stored_report(report: dict) -> dict:
    """The report as the file keeps it: without timings, so the same input and options give the same bytes
    wherever and however often they are encoded (one process, a pool, a dask cluster), as `gzip -n` does."""
    return {k: v for k, v in report.items() if k not in VOLATILE_REPORT_KEYS}


def without_bytes(value):
    """A codec configuration for people: tables and other binary entries left out (the header keeps them)."""
    if isinstance(value, dict):
        return {k: without_bytes(v) for k, v in value.items() if not isinstance(v, bytes)
                and not (isinstance(v, list) and v and isinstance(v[0], bytes))}
    return value


def channel_planes(vol: Volume, channel: int, limit: int = 16):
    """Up to `limit` 2-D planes of one channel, spread evenly over the other axes (for the noise fit)."""
    y, x = spatial_axes(vol.axes, len(vol.shape))
    others = [k for k in range(len(vol.shape)) if k not in (y, x) and vol.axes[k] != "C"]
    count = math.prod(vol.shape[k] for k in others)
    for flat in np.unique(np.linspace(0, count - 1, min(limit, count)).round().astype(int)):
        where = np.unravel_index(flat, [vol.shape[k] for k in others]) if others else ()
        slices = [slice(None)] * len(vol.shape)
        for k, i in zip(others, where):
            slices[k] = slice(int(i), int(i) + 1)
        if "C" in vol.axes:
            slices[vol.axes.index("C")] = slice(channel, channel + 1)
        yield vol.block(tuple(slices)).reshape(vol.shape[y], vol.shape[x])


def field_codec(vol: Volume, cid: str, opts: EncodeOptions) -> tuple[Codec, Target]:
    """`inr` (fast grid network), `inr:siren` (INIF-faithful) or `hybrid` (J2K base + grid residual): sized by ratio."""
    from .codecs.hybrid import Hybrid
    from .codecs.inr import Inr
    from .guidance import GUIDES
    if vol.dtype.str not in ("|u1", "<u2"):
        raise MzcError(f"the {cid} codec takes uint8/uint16 data, not {vol.dtype.name}")
    if vol.axes.endswith("S"):
        raise MzcError(f"the {cid} codec codes grey planes; this file has interleaved samples (RGB)")
    target = parse_quality(opts.quality or DEFAULT_FIELD_TARGET)
    if target.kind != "ratio":
        raise MzcError(f"--codec {cid} is sized by its file: give a ratio like -q 512x, not a PSNR")
    if opts.guide is not None and opts.guide not in GUIDES:
        raise MzcError(f"unknown --guide {opts.guide!r}: choose from {', '.join(GUIDES)}")
    if opts.time_budget is not None and not (math.isfinite(opts.time_budget) and opts.time_budget > 0):
        raise MzcError("--time-budget must be a positive number of seconds")
    net = cid.partition(":")[2] or "grid"
    if cid == "hybrid":
        return Hybrid(guide=opts.guide), target
    return Inr(net=net, guide=opts.guide), target


def field_chunks(shape: tuple[int, ...], axes: str) -> tuple[int, ...]:
    """Neural fields fit native 3-D volumes: default chunks span Z (up to 2^26 voxels), other axes as usual."""
    chunks = list(default_chunks(shape, axes))
    if "Z" in axes:
        z = axes.index("Z")
        plane = math.prod(chunks) // max(chunks[z], 1)
        chunks[z] = max(1, min(shape[z], (1 << 26) // max(plane, 1)))
    return tuple(chunks)


def learned_codec(vol: Volume, which: str, quality: str | None) -> tuple[Codec, Target | None]:
    """`learned` (default family), `learned:FAMILY` (its rate points) or `learned:MODEL` (one fixed model)."""
    from .codecs.learned import Learned
    from .zoo import DEFAULT_FAMILY, FAMILY_NAMES
    if vol.dtype.str not in ("|u1", "<u2"):
        raise MzcError(f"the learned codec takes uint8/uint16 data, not {vol.dtype.name}")
    if vol.axes.endswith("S"):
        raise MzcError("the learned codec codes grey planes; this file has interleaved samples (RGB)")
    if not which or which in FAMILY_NAMES:
        # no -q: 50x, a ratio every family reaches (a PSNR default could be out of a family's range)
        return Learned(family=which or DEFAULT_FAMILY), parse_quality(quality or "50x")
    if quality:
        raise MzcError(f"--codec learned:{which} fixes the rate; -q chooses among a family's models "
                       f"(e.g. --codec learned:{DEFAULT_FAMILY} -q 50x)")
    return Learned(model=which), None


class Encoding:
    """One encode of one volume into one open file handle."""

    def __init__(self, vol: Volume, opts: EncodeOptions, source_name: str):
        self.started = time.perf_counter()  # encode_seconds covers scan, knob search, coding and any retry
        self.vol, self.opts, self.source_name = vol, opts, source_name
        field = (opts.codec or "").partition(":")[0] in ("inr", "hybrid")
        chunks = tuple(opts.chunks) if opts.chunks else (field_chunks if field else default_chunks)(vol.shape, vol.axes)
        if len(chunks) != len(vol.shape):
            raise MzcError(f"--chunk gives {len(chunks)} sizes but the array has {len(vol.shape)} axes {vol.shape}")
        self.grid = Grid(vol.shape, tuple(min(c, n) for c, n in zip(chunks, vol.shape)))
        if max(int(np.prod(self.grid.chunk_shape(0))), 1) > (1 << 31):
            raise MzcError("chunk too large: at most 2^31 elements per chunk")
        self.stats = scan(vol.block(self.grid.slices(i)) for i in range(self.grid.n_chunks))
        self.bound = self.make_bound()
        self.codec, self.target = choose_codec(vol, opts, self.bound)
        # rate points (learned models): the one chosen, and the lowest allowed (raised when the real file misses
        # a PSNR the sample met)
        self.knob_floor, self.chosen_knob = 0, None
        self.goal = self.target  # what the knob search aims at; raised on a retry, the user's target is not
        # worker processes cost a start-up and a copy of every chunk: worth it only for more than a few MB
        self.workers = useful_workers(opts.workers, vol.nbytes, self.grid.n_chunks)

    def make_bound(self) -> Bound | None:
        """The guarantee asked for, with its bin tables: --noise K (per-channel noise models) or --max-error E with
        a named lossy codec (a plain --max-error keeps the nearlossless codec)."""
        opts, vol = self.opts, self.vol
        if opts.noise_model is not None and opts.noise is None:
            raise MzcError("--noise-model a,b goes with --noise K")
        if opts.effort not in EFFORTS:
            raise MzcError(f"unknown --effort {opts.effort!r}: choose from {', '.join(EFFORTS)}")
        if opts.noise is None and (opts.max_error is None or (opts.codec or "auto") in ("auto", "nearlossless")):
            return None
        if opts.noise is not None and opts.max_error is not None:
            raise MzcError("--noise and --max-error are alternatives: give one")
        if opts.lossless:
            raise MzcError("--lossless cannot be combined with --noise or --max-error")
        what = "--noise" if opts.noise is not None else "--max-error"
        if vol.dtype.str not in ("|u1", "<u2"):
            raise MzcError(f"{what} takes uint8/uint16 data, not {vol.dtype.name}")
        if vol.axes.endswith("S"):
            raise MzcError(f"{what} codes grey planes; this file has interleaved samples (RGB)")
        lo, hi = int(self.stats.min), int(self.stats.max)
        if opts.max_error is not None:
            if not opts.max_error >= 0 or not math.isfinite(opts.max_error):
                raise MzcError(f"--max-error must be a finite number >= 0, got {opts.max_error:g}")
            return Bound.absolute(int(min(opts.max_error, np.iinfo(vol.dtype).max)), lo, hi)
        if not (math.isfinite(opts.noise) and opts.noise >= 0):
            raise MzcError(f"--noise K must be a finite number >= 0, got {opts.noise:g}")
        if "C" in vol.axes and self.grid.chunks[vol.axes.index("C")] != 1:
            raise MzcError("--noise fits one model per channel: chunks must hold one channel (1 on C in --chunk)")
        if opts.noise_model is not None:
            models = [parse_model(opts.noise_model)]
        else:
            # blocks touching the file's floor or ceiling (zeros, a 12-bit camera saturating at 4095) have truncated noise
            models = [fit_noise(channel_planes(vol, c), (lo, hi))
                      for c in range(vol.shape[vol.axes.index("C")] if "C" in vol.axes else 1)]
        return Bound.noise(opts.noise, models, lo, hi)

    def header(self, codec: Codec) -> dict:
        return {
            "shape": list(self.vol.shape), "dtype": self.vol.dtype.str, "axes": self.vol.axes,
            "chunks": list(self.grid.chunks), "n_chunks": self.grid.n_chunks, "codec": codec.config(),
            "tiff": self.vol.metadata, "data_range": [self.stats.min, self.stats.max],
            "software": f"mzc {__version__}",
            **self.bound_facts(),
        }

    def bound_facts(self) -> dict:
        """What a bounded file promises, for the header and the report: the bound, the noise model per channel."""
        if self.bound is None:
            return {}
        facts = {"bound": self.bound.describe()}
        if self.bound.models:
            facts["noise"] = {"k": self.bound.k, "models": [m.as_dict() for m in self.bound.models]}
        return facts

    def overhead_bytes(self, codec: Codec) -> int:
        fixed = 12 + RECORD_OVERHEAD + len(pack_msg(self.header(codec))) + 32 + RECORD_OVERHEAD + 8
        fixed += self.report_bytes(codec) + RECORD_OVERHEAD + INDEX_ENTRY_BYTES
        per_chunk = RECORD_OVERHEAD + INDEX_ENTRY_BYTES + CHUNK_META_BYTES
        return fixed + per_chunk * self.grid.n_chunks

    def report_bytes(self, codec: Codec) -> int:
        """Size of the report record's payload, from a report of this file with the widest values it can hold
        (a budget-sized codec at 512x has ~4 KB for everything: a fixed guess would cost it a few percent)."""
        rep = self.report(codec, Fidelity(self.stats.range, self.vol.dtype.str), 99999.999, 1 << 40, True)
        rep.update({"psnr_db": 1.0 / 3, "psnr_dtype_db": 1.0 / 3, "ssim": 1.0 / 3, "pearson_r": 1.0 / 3,
                    "max_abs_error": 1 << 40, "ratio": 1.0 / 3, "bpp": 1.0 / 3})
        return len(pack_msg(stored_report(rep))) + 16

    def fit(self, scale: float = 1.0) -> Codec:
        """Fix the codec (and its knob) for this file; `scale` shrinks the byte budget on a corrective pass."""
        if self.wraps_base:
            base = self.fit_codec(scale) if self.target is not None else self.smallest_base()
            return Bounded(base=base.config(), bound=self.bound.config(), effort=self.opts.effort).bind()
        return self.fit_codec(scale)

    @property
    def wraps_base(self) -> bool:
        """A lossy base inside `bounded`: its -q is the base's, the file's size is what the bound costs."""
        return self.bound is not None and not isinstance(self.codec, Noise)

    def smallest_base(self) -> Codec:
        """The base quality that makes the smallest bounded file, measured on sample chunks: every rate point of a
        learned family, or a golden-section search over a classic codec's knob (total size is unimodal in it)."""
        idx = sample_indices(self.grid.n_chunks, int(np.prod(self.grid.chunks)), int(np.prod(self.vol.shape)),
                             max_chunks=4, max_elems=2 << 20)
        blocks = [(self.grid.slices(i), self.vol.block(self.grid.slices(i))) for i in idx]
        base = self.codec.prepare(self.stats)
        sizes: dict[float, int] = {}

        def size(knob: float) -> int:
            if knob not in sizes:
                wrapped = Bounded(base=base.with_knob(knob).config(), bound=self.bound.config(), effort="fast")
                sizes[knob] = sum(len(wrapped.for_chunk(self.vol.axes, sl).encode(b)[0]) for sl, b in blocks)
            return sizes[knob]

        points = base.knob_values()
        if points:
            return base.with_knob(min(points, key=size))
        if not base.knob_bounds:
            return base.bind()
        lo, hi = base.knob_bounds
        warp = (math.log, math.exp) if base.knob_log else (float, float)
        a, b = warp[0](lo), warp[0](hi)
        golden = (math.sqrt(5) - 1) / 2
        c, d = b - golden * (b - a), a + golden * (b - a)
        for _ in range(BASE_SEARCH_STEPS):
            if size(warp[1](c)) <= size(warp[1](d)):
                b, d = d, c
                c = b - golden * (b - a)
            else:
                a, c = c, d
                d = a + golden * (b - a)
        return base.with_knob(min(sizes, key=sizes.get))

    def fit_codec(self, scale: float) -> Codec:
        points = self.codec.knob_values() if self.codec is not None else []
        fixed = self.codec is not None and not (self.codec.knob_bounds or points)  # e.g. one named learned model
        if self.codec is not None and self.codec.budgeted:
            return self.budgeted(scale)
        if self.goal is None or fixed:
            return self.codec.prepare(self.stats).bind()
        slow = bool(points)  # learned: each trial is a network pass on the CPU
        idx = sample_indices(self.grid.n_chunks, int(np.prod(self.grid.chunks)), int(np.prod(self.vol.shape)),
                             max_chunks=4 if slow else 8, max_elems=(2 << 20) if slow else (6 << 20))
        blocks = [self.vol.block(self.grid.slices(i)) for i in idx]
        sample_raw = sum(b.nbytes for b in blocks)
        candidates = [self.codec] if self.codec is not None else [from_config({"id": c}) for c in AUTO_CANDIDATES]
        best, best_trial = None, None
        errors = []
        for cand in candidates:
            cand = cand.prepare(self.stats)
            budget = None
            if self.goal.kind == "ratio":
                body_total = self.vol.nbytes / self.goal.value - self.overhead_bytes(cand)
                if body_total <= 0:
                    raise MzcError(f"-q {self.goal} cannot be met: the header and index alone exceed "
                                   f"{self.vol.nbytes / self.goal.value:.0f} bytes (file too small for that ratio)")
                budget = body_total * sample_raw / self.vol.nbytes * scale
            try:
                if cand.knob_values():
                    t = choose_point(cand, blocks, self.goal, budget, self.stats.range, self.knob_floor)
                    self.chosen_knob = t.knob
                else:
                    t = search_knob(cand, blocks, self.goal, budget, self.stats.range)
            except MzcError as exc:
                errors.append(str(exc))
                continue
            better = best_trial is None or (t.mse < best_trial.mse if self.goal.kind == "ratio"
                                            else t.body_bytes < best_trial.body_bytes)
            if better:
                best, best_trial = cand.with_knob(t.knob), t
        if best is None:
            raise MzcError(errors[0])
        return best.bind()

    def budgeted(self, scale: float) -> Codec:
        """A codec that meets a byte budget inside each chunk: bytes per element from the ratio, time per element."""
        body_total = self.vol.nbytes / self.goal.value - self.overhead_bytes(self.codec)
        if body_total <= 0:
            raise MzcError(f"-q {self.goal} cannot be met: the header and index alone exceed "
                           f"{self.vol.nbytes / self.goal.value:.0f} bytes (file too small for that ratio)")
        n = int(np.prod(self.vol.shape))
        seconds = None
        if self.opts.time_budget:
            seconds = self.opts.time_budget * min(self.workers, self.grid.n_chunks) / n
        return self.codec.with_budget(body_total * scale / n, seconds).bind()

    def write(self, fh: BinaryIO, codec: Codec) -> dict:
        writer = Writer(fh, self.header(codec))
        packed: dict[bytes, bytes] = {}

        def chunk_config(i: int) -> bytes:  # a noise-bounded chunk's codec names its channel's table
            cfg = pack_msg(codec.for_chunk(self.vol.axes, self.grid.slices(i)).config())
            return packed.setdefault(cfg, cfg)

        fid = Fidelity(self.stats.range, self.vol.dtype.str)
        # a guaranteed bound is always checked
        check = self.opts.check or isinstance(codec, (NearLossless, Noise, Bounded))
        items = ((chunk_config(i), self.vol.block(self.grid.slices(i)), self.stats.range, codec.lossless, check)
                 for i in range(self.grid.n_chunks))
        if self.opts.client is not None:  # every chunk a task on the dask cluster, assembled here in order
            results = dask_map(self.opts.client, encode_chunk, items)
        else:
            results = pmap(encode_chunk, items, self.workers)
        for i, (body, params, part) in enumerate(results):
            writer.write_chunk(i, params, body)
            fid.merge(part)
            if self.opts.progress:
                self.opts.progress(i + 1, self.grid.n_chunks)
        seconds = time.perf_counter() - self.started
        size = writer.position
        for _ in range(8):  # the report states the final file size, which includes the report itself
            report = self.report(codec, fid, seconds, size, check)
            payload = pack_msg(stored_report(report))
            if writer.size_after(len(payload)) == size:
                break
            size = writer.size_after(len(payload))
        writer.write_record(REPORT, payload)
        if writer.close() != report["bytes_out"]:
            raise MzcError("internal error: report size mismatch")
        return report

    def report(self, codec: Codec, fid: Fidelity, seconds: float, size_so_far: int, checked: bool) -> dict:
        rep = {
            "input": self.source_name, "codec": codec.id,
            "codec_config": without_bytes(codec.config()),
            "shape": list(self.vol.shape), "dtype": self.vol.dtype.name, "axes": self.vol.axes,
            "bytes_in": self.vol.nbytes, "bytes_out": size_so_far,
            "ratio": round(self.vol.nbytes / size_so_far, 4),
            "bpp": round(size_so_far * 8 / int(np.prod(self.vol.shape)), 6),
            "data_range": [self.stats.min, self.stats.max],
        }
        if checked or codec.lossless:
            rep.update({k: v for k, v in fid.report().items() if k != "mse"})
        else:  # --no-check on a lossy codec: nothing was decoded, so nothing is claimed
            rep.update(dict.fromkeys(("psnr_db", "psnr_dtype_db", "ssim", "max_abs_error", "pearson_r")))
        rep.update(self.bound_facts())
        if self.bound is not None and self.bound.models and (checked or codec.lossless):
            rep["max_error_sigma"] = round(fid.max_sigma, 4)  # largest |error| / sigma(original) over all pixels
        rep["target"] = str(self.target) if self.target else None
        rep["checked"] = checked  # False: a lossless encode trusted its codec instead of decoding every chunk back
        rep["encode_seconds"] = round(seconds, 3)
        return rep

    @property
    def discrete(self) -> bool:
        """The rate was chosen among a few points rather than searched on a continuous knob."""
        return self.chosen_knob is not None

    def ratio_ok(self, report: dict) -> bool:
        if self.wraps_base:
            return True  # -q was the base's target; the bound decides what the residual costs
        if self.target is None or self.target.kind != "ratio" or self.discrete:
            return True  # a discrete codec meets a ratio with its nearest rate point, not within a tolerance
        tolerance = FIELD_RATIO_TOLERANCE if self.codec is not None and self.codec.budgeted else RATIO_TOLERANCE
        return abs(report["ratio"] / self.target.value - 1) <= tolerance

    def psnr_ok(self, report: dict) -> bool:
        if self.wraps_base:
            return True
        if self.target is None or self.target.kind != "psnr" or report["psnr_db"] is None:
            return True
        value = report["psnr_db"]
        return value == "inf" or value >= self.target.value
