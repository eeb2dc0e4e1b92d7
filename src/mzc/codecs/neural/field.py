"""Neural fields as stored in an .mzc chunk: the quantized weights, their packing, and a numpy evaluator.

Two networks (spec/FORMAT.md section 6.2):
- `grid` (the fast one): multi-resolution feature grids (cells of c, 2c, 4c, ... pixels, F features per node)
  sampled by linear interpolation and read out by a tiny ReLU MLP. Every parameter touches only the pixels near its
  node, so a region decodes from the nodes around it, and the field is continuous: no block seams by construction.
- `siren` (INIF-faithful): one sine-activated MLP over normalised coordinates with a learnable frequency per layer.

Decoding needs numpy only. Every sum is an explicit loop of float32 multiply/add in a fixed order (no BLAS, whose
blocking changes with thread counts), and each output pixel is computed from its own coordinates alone, so a region
or a different thread count gives the same bits as the full decode.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import msgpack
import numpy as np
import zstandard

from ...errors import MzcError

NETS = ("grid", "siren")
MAX_PARAMS = 1 << 26
MAX_POINTS_PER_PASS = 1 << 18
ZSTD_LEVEL = 19


@dataclass
class Field:
    """A fitted field: architecture, float parameters (as the decoder sees them) and the value mapping."""
    net: str
    extent: tuple[int, ...]          # (H, W) or (D, H, W): the chunk's pixels the field covers
    offset: float                    # decoded value = u * scale + offset
    scale: float
    cells: tuple[float, ...] = ()    # grid: cell size of each level in pixels, coarse to fine
    features: int = 0                # grid: features per node
    widths: tuple[int, ...] = ()     # MLP layer widths (inputs ... outputs excluded): hidden sizes
    omegas: tuple[float, ...] = ()   # siren: frequency of each sine layer
    params: list[np.ndarray] = field(default_factory=list)

    @property
    def ndim(self) -> int:
        return len(self.extent)


# ------------------------------------------------------------------ shapes
def grid_nodes(n: int, cell: float) -> int:
    """Nodes along an axis of n pixels: node k sits at pixel coordinate -0.5 + k*cell and they cover [-0.5, n-0.5]."""
    return int(math.ceil(n / cell - 1e-9)) + 1


def param_shapes(f: Field) -> list[tuple[int, ...]]:
    """The parameter tensors in storage order: grids (coarse to fine), then (weight, bias) per MLP layer."""
    shapes: list[tuple[int, ...]] = []
    if f.net == "grid":
        for c in f.cells:
            shapes.append((f.features, *(grid_nodes(n, c) for n in f.extent)))
        fan_in = f.features * len(f.cells)
    else:
        fan_in = f.ndim
    for width in (*f.widths, 1):
        shapes += [(fan_in, width), (width,)]
        fan_in = width
    return shapes


def count_params(f: Field) -> int:
    return sum(math.prod(s) for s in param_shapes(f))


# ------------------------------------------------------------------ evaluation (numpy, deterministic)
def _mlp(x: np.ndarray, layers: list[tuple[np.ndarray, np.ndarray]], omegas: tuple[float, ...]) -> np.ndarray:
    """x: (K, N) float32 inputs. ReLU (grid) or sine (siren) hidden layers, linear output; sums run over k in
    order, one multiply and one add per term, so every point's value is independent of N and of threads."""
    for li, (w, b) in enumerate(layers):
        acc = np.repeat(b.astype(np.float32)[:, None], x.shape[1], axis=1)
        for k in range(w.shape[0]):
            acc += w[k].astype(np.float32)[:, None] * x[k]
        if li < len(layers) - 1:
            if omegas:
                acc = np.sin(np.float32(omegas[li]) * acc)
            else:
                np.maximum(acc, 0, out=acc)
        x = acc
    return x[0]


def _lerp_axis(values: np.ndarray, axis: int, pos: np.ndarray, cell: float) -> np.ndarray:
    """Linear interpolation of node values along one axis at pixel coordinates `pos` (clamped to the grid)."""
    n_nodes = values.shape[axis]
    g = (pos.astype(np.float32) + np.float32(0.5)) / np.float32(cell)
    i0 = np.clip(np.floor(g), 0, n_nodes - 2).astype(np.intp)
    t = np.clip(g - i0.astype(np.float32), 0, 1).astype(np.float32)
    shape = [1] * values.ndim
    shape[axis] = len(pos)
    t = t.reshape(shape)
    a = np.take(values, i0, axis=axis)
    b = np.take(values, i0 + 1, axis=axis)
    return a * (np.float32(1) - t) + b * t


def evaluate(f: Field, positions: list[np.ndarray]) -> np.ndarray:
    """The field's normalised values u on the tensor product of per-axis pixel coordinates; shape = their lengths."""
    if len(positions) != f.ndim:
        raise MzcError("internal error: coordinate count does not match the field")
    out_shape = tuple(len(p) for p in positions)
    if f.net == "grid":
        n_grids = len(f.cells)
        grids, mlp = f.params[:n_grids], f.params[n_grids:]
        layers = list(zip(mlp[0::2], mlp[1::2]))
        out = np.empty(out_shape, np.float32)
        rows = max(1, MAX_POINTS_PER_PASS // max(1, math.prod(out_shape[1:])))
        for r0 in range(0, out_shape[0], rows):  # slabs along the first axis keep temporaries small
            part = [positions[0][r0:r0 + rows], *positions[1:]]
            feats = []
            for g, cell in zip(grids, f.cells):
                v = g
                for axis, pos in enumerate(part):
                    v = _lerp_axis(v, axis + 1, pos, cell)
                feats.append(v.reshape(f.features, -1))
            out[r0:r0 + rows] = _mlp(np.concatenate(feats), layers, ()).reshape(len(part[0]), *out_shape[1:])
        return out
    layers = list(zip(f.params[0::2], f.params[1::2]))
    norm = [(np.float32(2) * (p + np.float32(0.5)) / np.float32(n) - np.float32(1)).astype(np.float32)
            for p, n in zip(positions, f.extent)]
    mesh = np.meshgrid(*norm, indexing="ij")
    flat = [m.reshape(-1) for m in mesh]
    total = flat[0].size
    out = np.empty(total, np.float32)
    step = max(1, MAX_POINTS_PER_PASS * 16 // max(f.widths))
    for s in range(0, total, step):
        out[s:s + step] = _mlp(np.stack([c[s:s + step] for c in flat]), layers, f.omegas)
    return out.reshape(out_shape)


def to_values(u: np.ndarray, f: Field, dtype: np.dtype) -> np.ndarray:
    info = np.iinfo(dtype)
    x = np.rint(u.astype(np.float64) * f.scale + f.offset)
    return np.clip(x, info.min, info.max).astype(dtype)


# ------------------------------------------------------------------ quantization
def row_steps(params: list[np.ndarray], net: str, n_grids: int, s: float) -> list[np.ndarray]:
    """Quantization step of every row (grid feature channel / MLP output unit): s times the row's RMS.

    MLP rows get an 8x finer step: they are few, and every pixel goes through them.
    """
    steps = []
    for i, p in enumerate(params):
        rows = p.reshape(p.shape[0], -1) if (net == "grid" and i < n_grids) else p.reshape(-1, p.shape[-1]).T
        rows = rows.astype(np.float64)
        rms = np.sqrt(np.mean(np.square(rows), axis=1)) + 1e-12
        is_grid = net == "grid" and i < n_grids
        mult = s if is_grid else s / 8
        # stored in at most 16 bits after zigzag: MLP integers up to +-32000; grid nodes are stored as differences
        # of neighbours, which can be twice their values, so +-16000
        step = np.maximum(rms * mult, np.abs(rows).max(axis=1) / (16000 if is_grid else 32000))
        # stored as float16 (2 bytes a row matter at 512x): round up here so coder and decoder use the same steps
        half = np.clip(step, 1e-7, 6e4).astype(np.float16)
        half = np.where(half.astype(np.float64) < step, np.nextafter(half, np.float16(np.inf)), half)
        steps.append(half.astype(np.float32))
    return steps


def _rows_axis(p: np.ndarray, is_grid: bool) -> tuple[int, ...]:
    """Broadcast shape of per-row steps against the parameter."""
    if is_grid:
        return (p.shape[0],) + (1,) * (p.ndim - 1)
    return (1,) * (p.ndim - 1) + (p.shape[-1],)


def quantize(params: list[np.ndarray], steps: list[np.ndarray], n_grids: int) -> list[np.ndarray]:
    return [np.rint(p / st.reshape(_rows_axis(p, i < n_grids))).astype(np.int64)
            for i, (p, st) in enumerate(zip(params, steps))]


def dequantize(ints: list[np.ndarray], steps: list[np.ndarray], n_grids: int) -> list[np.ndarray]:
    return [(q.astype(np.float32) * st.reshape(_rows_axis(q, i < n_grids))).astype(np.float32)
            for i, (q, st) in enumerate(zip(ints, steps))]


def _zigzag(q: np.ndarray) -> np.ndarray:
    return np.where(q >= 0, 2 * q, -2 * q - 1).astype(np.uint64)


def _unzigzag(z: np.ndarray) -> np.ndarray:
    z = z.astype(np.int64)
    return np.where(z % 2 == 0, z // 2, -(z + 1) // 2)


def _pack_ints(ints: list[np.ndarray]) -> tuple[int, bytes]:
    """Zigzag the integers; one byte each when they fit, else little-endian u16 split into byte planes; one zstd frame.

    Grid nodes are stored as differences from their left neighbour along the last axis (neighbouring nodes of an
    image-like grid are alike), which measured ~10% smaller than the values themselves.
    """
    flat = np.concatenate([_zigzag(_delta(q)).reshape(-1) for q in ints]) if ints else np.zeros(0, np.uint64)
    width = 1 if flat.size == 0 or int(flat.max()) < 256 else 2
    if flat.size and int(flat.max()) >= 1 << 16:
        raise MzcError("internal error: quantized weight out of range")
    if width == 1:
        raw = flat.astype(np.uint8).tobytes()
    else:
        raw = flat.astype("<u2").view(np.uint8).reshape(-1, 2).T.tobytes()
    return width, zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(raw)


def _delta(q: np.ndarray) -> np.ndarray:
    d = q.copy()
    if q.ndim >= 2 and q.shape[-1] > 1:
        d[..., 1:] = q[..., 1:] - q[..., :-1]
    return d


def _undelta(d: np.ndarray) -> np.ndarray:
    return np.cumsum(d, axis=-1) if d.ndim >= 2 else d


def pack(f: Field, steps: list[np.ndarray], ints: list[np.ndarray]) -> bytes:
    n_grids = len(f.cells) if f.net == "grid" else 0
    # MLP weights are not image-like: no delta for them (shape (fan_in, width) rows are unrelated)
    coded = [q if i < n_grids else q.reshape(-1) for i, q in enumerate(ints)]
    width, blob = _pack_ints(coded)
    return msgpack.packb({
        "net": f.net, "extent": list(f.extent), "offset": float(f.offset), "scale": float(f.scale),
        "cells": [float(c) for c in f.cells], "features": f.features, "widths": list(f.widths),
        "omegas": [float(w) for w in f.omegas],
        "steps": np.concatenate(steps).astype("<f2").tobytes() if steps else b"", "w": width, "q": blob,
    }, use_bin_type=True)


def _check(cond: bool, what: str) -> None:
    if not cond:
        raise MzcError(f"corrupt chunk: inr {what}")


def _numbers(v, kind) -> bool:
    return isinstance(v, list) and all(isinstance(x, kind) and not isinstance(x, bool) and math.isfinite(x) for x in v)


def _layout(m: dict, expected_extent: tuple[int, ...] | None) -> Field:
    """The network a stored map declares, every number range-checked (nothing allocated yet)."""
    net, extent = m.get("net"), m.get("extent")
    _check(net in NETS, f"network {net!r}")
    _check(isinstance(extent, list) and len(extent) in (2, 3)
           and all(isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= 1 << 20 for n in extent), "extent")
    if expected_extent is not None:
        _check(tuple(extent) == tuple(expected_extent), f"extent {extent} does not match the chunk")
    cells, widths, omegas = m.get("cells"), m.get("widths"), m.get("omegas")
    _check(_numbers(cells, (int, float)) and all(0.5 <= c <= 1 << 20 for c in cells) and len(cells) <= 16, "cells")
    _check(_numbers(widths, int) and all(1 <= w <= 1024 for w in widths) and len(widths) <= 16, "widths")
    _check(_numbers(omegas, (int, float)) and all(abs(w) <= 1e4 for w in omegas), "omegas")
    features = m.get("features")
    _check(isinstance(features, int) and not isinstance(features, bool) and 0 <= features <= 64, "features")
    offset, scale = m.get("offset"), m.get("scale")
    _check(_numbers([offset, scale], (int, float)), "value mapping")
    if net == "grid":
        _check(1 <= len(cells) and features >= 1 and not omegas, "grid layout")
    else:
        _check(not cells and len(omegas) == len(widths) >= 1, "siren layout")
    return Field(net, tuple(extent), float(offset), float(scale), tuple(float(c) for c in cells), features,
                 tuple(widths), tuple(float(w) for w in omegas))


def _weights(m: dict, f: Field) -> tuple[list[np.ndarray], list[np.ndarray], int]:
    """The quantized weights (integers per parameter array) and their per-row steps, sizes checked first."""
    shapes = param_shapes(f)
    total = sum(math.prod(s) for s in shapes)
    _check(total <= MAX_PARAMS, f"declares {total} parameters")
    n_grids = len(f.cells) if f.net == "grid" else 0
    n_rows = [s[0] if i < n_grids else s[-1] for i, s in enumerate(shapes)]
    steps_raw, width, blob = m.get("steps"), m.get("w"), m.get("q")
    _check(isinstance(steps_raw, bytes) and len(steps_raw) == 2 * sum(n_rows), "step table size")
    _check(width in (1, 2) and isinstance(blob, bytes), "weight stream")
    try:
        raw = zstandard.ZstdDecompressor().decompress(blob, max_output_size=total * width)
    except zstandard.ZstdError:
        raise MzcError("corrupt chunk: inr weight stream does not decompress") from None
    _check(len(raw) == total * width, "weight stream size")
    flat = np.frombuffer(raw, np.uint8) if width == 1 else \
        np.frombuffer(raw, np.uint8).reshape(2, -1).T.copy().view("<u2").reshape(-1)
    all_steps = np.frombuffer(steps_raw, "<f2").astype(np.float32)
    _check(bool(np.all(np.isfinite(all_steps))), "step table")
    ints, steps, at, row = [], [], 0, 0
    for i, (shape, rows) in enumerate(zip(shapes, n_rows)):
        n = math.prod(shape)
        q = _unzigzag(flat[at:at + n])
        at += n
        ints.append(_undelta(q.reshape(shape)) if i < n_grids else q.reshape(shape))
        steps.append(all_steps[row:row + rows])
        row += rows
    return ints, steps, n_grids


def unpack(body: bytes, expected_extent: tuple[int, ...] | None = None) -> Field:
    """Parse and validate a stored field; every size is checked before anything is allocated."""
    try:
        m = msgpack.unpackb(bytes(body), raw=False, strict_map_key=True)
    except Exception:  # noqa: BLE001 - msgpack raises several unrelated types
        raise MzcError("corrupt chunk: inr payload is not msgpack") from None
    _check(isinstance(m, dict), "payload is not a map")
    f = _layout(m, expected_extent)
    ints, steps, n_grids = _weights(m, f)
    f.params = dequantize(ints, steps, n_grids)
    return f
