"""The report record (`rEPT`) as stored: only what the header and the file's size do not already say.

At high ratios a small image's whole file is a few KB, and every byte of container is a byte the codec does not get:
the shape, dtype, axes, codec and its configuration, data range and bound are in the header; bytes in/out, ratio and
bits per pixel follow from the shape and the file's size. Those keys are left out of the stored record and filled
back in when it is read (`expand`), so readers see the full report of DESIGN §4 from old and new files alike.
"""
from __future__ import annotations

import math
import os

import numpy as np

HEADER_KEYS = ("shape", "dtype", "axes", "codec", "codec_config", "data_range", "bound", "noise")
SIZE_KEYS = ("bytes_in", "bytes_out", "ratio", "bpp")
INFINITE_DB_KEYS = ("psnr_db", "psnr_dtype_db")


def without_bytes(value):
    """A codec configuration for people: tables and other binary entries left out (the header keeps them)."""
    if isinstance(value, dict):
        return {k: without_bytes(v) for k, v in value.items() if not isinstance(v, bytes)
                and not (isinstance(v, list) and v and isinstance(v[0], bytes))}
    return value


def compact(report: dict, volatile: tuple[str, ...] = ()) -> dict:
    """The stored form: no header or size facts, no timings, and the input's file name without its folders (the
    same input and options give the same bytes wherever they are encoded)."""
    stored = {k: v for k, v in report.items() if k not in HEADER_KEYS + SIZE_KEYS + volatile}
    if isinstance(stored.get("input"), str):
        stored["input"] = os.path.basename(stored["input"]) or stored["input"]
    return stored


def expand(stored: dict, header: dict, file_size: int) -> dict:
    """The full report: the stored keys, plus those the header and the file's size give (a key the record holds,
    as in files written before the compact form, is kept as stored)."""
    shape = [int(n) for n in header.get("shape", [])]
    dtype = np.dtype(header["dtype"]) if "dtype" in header else None
    n = math.prod(shape) if shape else 0
    codec = header.get("codec") if isinstance(header.get("codec"), dict) else {}
    derived = {"codec": codec.get("id"), "codec_config": without_bytes(codec), "shape": shape,
               "dtype": dtype.name if dtype is not None else None, "axes": header.get("axes"),
               "data_range": header.get("data_range")}
    derived.update({k: header[k] for k in ("bound", "noise") if k in header})
    if dtype is not None and n and file_size:
        raw = n * dtype.itemsize
        derived.update(bytes_in=raw, bytes_out=file_size, ratio=round(raw / file_size, 4),
                       bpp=round(file_size * 8 / n, 6))
    legacy = {k: None for k in INFINITE_DB_KEYS if stored.get(k) == "inf"}  # files before null meant "identical"
    return {**derived, **stored, **legacy}
