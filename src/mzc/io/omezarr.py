"""A decoded .mzc as OME-Zarr (NGFF 0.4 on Zarr format 2): the array in t, c, z, y, x order, a 2x pyramid in Y and
X, and physical pixel sizes taken from the source TIFF's metadata (OME-XML, ImageJ or resolution tags).

The pyramid levels sample the full-resolution plane with mzc's `--scale` convention (spec §9: at scale 1/2 every
output pixel is the mean of a 2x2 block), so level k equals `mzc decode --scale 2^-k`. Planes are decoded and written
one at a time: memory stays at one plane per level, whatever the stack size. The store is built in a temporary
folder beside the target and renamed into place, so a failure leaves nothing behind.
"""
from __future__ import annotations

import itertools
import os
import re
import shutil
import tempfile
import xml.etree.ElementTree as ET

from ..errors import MzcError
from ..resample import resample, sample_positions, scaled_length

NGFF_ORDER = "TCZYX"
AXIS_TYPES = {"T": "time", "C": "channel", "Z": "space", "Y": "space", "X": "space"}
MIN_LEVEL_SIDE = 64
MAX_LEVELS = 8
TILE = 1024
UM_PER_RESOLUTION_UNIT = {2: 25400.0, 3: 10000.0}  # TIFF ResolutionUnit inch, centimetre
UNIT_NAMES = {"um": "micrometer", "µm": "micrometer", "\\u00B5m": "micrometer", "micron": "micrometer",
              "nm": "nanometer", "mm": "millimeter", "cm": "centimeter", "m": "meter", "s": "second",
              "ms": "millisecond", "min": "minute", "h": "hour"}


def ngff_axes(axes: str) -> str:
    """Stored axes -> the NGFF order of the same letters (RGB samples become channels)."""
    letters = axes.replace("S", "C") if "C" not in axes else axes
    unknown = set(letters) - set(NGFF_ORDER)
    if unknown or len(set(letters)) != len(letters):
        raise MzcError(f"OME-Zarr has axes t, c, z, y, x only; this file's axes are {axes!r}")
    return "".join(a for a in NGFF_ORDER if a in letters)


def physical_sizes(metadata: dict) -> dict[str, tuple[float, str | None]]:
    """Pixel size per axis letter (value, NGFF unit) from OME-XML, ImageJ metadata or TIFF resolution tags."""
    sizes: dict[str, tuple[float, str | None]] = {}
    description = metadata.get("description") or ""
    if metadata.get("kind") == "ome" and description:
        try:
            pixels = next(e for e in ET.fromstring(description).iter() if e.tag.endswith("Pixels"))
        except (ET.ParseError, StopIteration):
            pixels = None
        if pixels is not None:
            for letter in "XYZ":
                value = pixels.get(f"PhysicalSize{letter}")
                if value:
                    sizes[letter] = (float(value), unit_name(pixels.get(f"PhysicalSize{letter}Unit", "µm")))
            if pixels.get("TimeIncrement"):
                sizes["T"] = (float(pixels.get("TimeIncrement")), unit_name(pixels.get("TimeIncrementUnit", "s")))
            return sizes
    resolution = metadata.get("resolution")
    if metadata.get("kind") == "imagej":
        fields = dict(re.findall(r"^(\w+)=(.*)$", description, re.M))
        unit = unit_name(fields.get("unit", "")) if fields.get("unit") else None
        if resolution:
            (xn, xd), (yn, yd) = resolution
            if xn and yn:
                sizes["X"], sizes["Y"] = (xd / xn, unit), (yd / yn, unit)
        if "spacing" in fields:
            sizes["Z"] = (float(fields["spacing"]), unit)
        if "finterval" in fields:
            sizes["T"] = (float(fields["finterval"]), "second")
        return sizes
    factor = UM_PER_RESOLUTION_UNIT.get(metadata.get("resolutionunit"))
    if resolution and factor:
        (xn, xd), (yn, yd) = resolution
        if xn and yn:
            sizes["X"], sizes["Y"] = (factor * xd / xn, "micrometer"), (factor * yd / yn, "micrometer")
    return sizes


def unit_name(text: str) -> str | None:
    """OME/ImageJ unit symbols -> NGFF (UDUNITS) names; unknown units are left out rather than guessed."""
    return UNIT_NAMES.get(text.strip()) if text else None


def pyramid_shapes(height: int, width: int) -> list[tuple[int, int]]:
    shapes = [(height, width)]
    while len(shapes) < MAX_LEVELS and min(shapes[-1]) // 2 >= MIN_LEVEL_SIDE:
        k = len(shapes)
        shapes.append((scaled_length(height, 0.5 ** k), scaled_length(width, 0.5 ** k)))
    return shapes


def write(mz, target: str, workers: int = 1) -> dict:
    """Write the whole decoded file as OME-Zarr at `target` (a folder ending in .zarr)."""
    import zarr

    order = ngff_axes(mz.axes)
    stored = mz.axes.replace("S", "C") if "C" not in mz.axes else mz.axes
    perm = [stored.index(a) for a in order]
    shape = [mz.shape[k] for k in perm]
    height, width = shape[-2], shape[-1]
    levels = pyramid_shapes(height, width)
    sizes = physical_sizes(mz.metadata)
    parent = os.path.dirname(os.path.abspath(target))
    tmp = tempfile.mkdtemp(prefix=".mzc-", suffix=".zarr", dir=parent)
    try:
        root = zarr.open_group(tmp, mode="w", zarr_format=2)
        arrays = []
        for k, (h, w) in enumerate(levels):
            level_shape = tuple(shape[:-2]) + (h, w)
            chunks = (1,) * (len(shape) - 2) + (min(h, TILE), min(w, TILE))
            arrays.append(root.create_array(str(k), shape=level_shape, chunks=chunks, dtype=mz.dtype))
        positions = [(sample_positions(height, h, 0, h), sample_positions(width, w, 0, w)) for h, w in levels]
        for index in itertools.product(*(range(n) for n in shape[:-2])):
            region = [slice(None)] * len(mz.shape)
            for axis, i in zip(perm[:-2], index):
                region[axis] = slice(i, i + 1)
            plane = mz.read(tuple(region), workers).transpose(perm).reshape(height, width)
            for array, pos in zip(arrays, positions):
                array[index] = plane if array.shape[-2:] == plane.shape else resample(plane, list(pos))
        root.attrs["multiscales"] = [multiscales(order, shape, levels, sizes, os.path.basename(target))]
        if os.path.isdir(target):  # the caller has checked -f
            shutil.rmtree(target)
        elif os.path.exists(target):
            os.unlink(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"shape": shape, "axes": order.lower(), "levels": len(levels)}


def multiscales(order: str, shape: list[int], levels: list[tuple[int, int]], sizes: dict, name: str) -> dict:
    axes = []
    for letter in order:
        entry = {"name": letter.lower(), "type": AXIS_TYPES[letter]}
        unit = sizes.get(letter, (None, None))[1]
        if unit:
            entry["unit"] = unit
        axes.append(entry)
    datasets = []
    for k, (h, w) in enumerate(levels):
        scale = [sizes.get(a, (1.0, None))[0] for a in order]
        scale[-2] *= shape[-2] / h
        scale[-1] *= shape[-1] / w
        datasets.append({"path": str(k), "coordinateTransformations": [{"type": "scale", "scale": scale}]})
    return {"version": "0.4", "name": name, "axes": axes, "datasets": datasets,
            "metadata": {"method": "mzc --scale (2x2 mean per level)"}}
