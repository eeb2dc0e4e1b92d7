"""A decoded .mzc as OME-Zarr: NGFF 0.5 on Zarr v3 (or 0.4 on Zarr v2 on request), the array in t, c, z, y, x order,
a 2x pyramid in Y and X, and physical pixel sizes taken from the source TIFF's metadata (OME-XML, ImageJ or
resolution tags). ome-zarr-py writes the store and its metadata; mzc supplies the axes, sizes and levels.

The pyramid levels are the file's lazy dask levels (lazy.py): mzc's `--scale` rendering (spec §9: at scale 1/2 every
output pixel is the mean of a 2x2 block), so level k equals `mzc decode --scale 2^-k`. Dask decodes and writes one
block at a time, so memory does not grow with the stack. The store is built in a temporary folder beside the target
and renamed into place, so a failure leaves nothing behind.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
import warnings
import xml.etree.ElementTree as ET

from ..errors import MzcError

NGFF_ORDER = "TCZYX"
METHOD = "mzc --scale (2x2 mean per level)"
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


def write(mz, target: str, workers: int = 1, version: str = "0.5") -> dict:
    """Write the whole decoded file as OME-Zarr `version` ("0.5": Zarr v3, "0.4": Zarr v2) at `target` (a folder)."""
    try:
        import dask
        import zarr
        from ome_zarr.format import FormatV04, FormatV05
        from ome_zarr.writer import write_multiscale
    except ImportError as exc:
        from ..extras import install_hint
        raise MzcError(f"OME-Zarr output needs the [zarr] extra ({exc.name} is missing): {install_hint('zarr')}") \
            from None

    fmt = {"0.5": FormatV05, "0.4": FormatV04}.get(version)
    if fmt is None:
        raise MzcError(f"OME-Zarr version {version!r}: choose 0.5 (Zarr v3) or 0.4 (Zarr v2)")
    order = ngff_axes(mz.axes)
    stored = mz.axes.replace("S", "C") if "C" not in mz.axes else mz.axes
    perm = [stored.index(a) for a in order]
    pyramid = [level.transpose(perm) for level in mz.pyramid()]
    sizes = physical_sizes(mz.metadata)
    units = {a.lower(): sizes[a][1] for a in order if a in sizes and sizes[a][1]}
    parent = os.path.dirname(os.path.abspath(target))
    tmp = tempfile.mkdtemp(prefix=".mzc-", suffix=".zarr", dir=parent)
    try:
        root = zarr.open_group(tmp, mode="w", zarr_format=3 if version == "0.5" else 2)
        with dask.config.set(scheduler="threads", num_workers=max(1, workers)), warnings.catch_warnings():
            # explicit transforms are deprecated in ome-zarr-py in favour of `scale`, whose derived translations
            # are in pixels (0.18: 0.5 at level 1 whatever the pixel size); NGFF wants physical units
            warnings.simplefilter("ignore", DeprecationWarning)
            write_multiscale(pyramid, root, fmt=fmt(), axes=[a.lower() for a in order], name=os.path.basename(target),
                             coordinate_transformations=transforms(order, [lv.shape for lv in pyramid], sizes),
                             axes_units=units or None, metadata={"method": METHOD})
        if os.path.isdir(target):  # the caller has checked -f
            shutil.rmtree(target)
        elif os.path.exists(target):
            os.unlink(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"shape": list(pyramid[0].shape), "axes": order.lower(), "levels": len(pyramid), "version": version}


def transforms(order: str, shapes: list[tuple[int, ...]], sizes: dict) -> list[list[dict]]:
    """Per level: the physical pixel size and where its first pixel's centre lies (resample.py's convention: pixel
    j of an m-pixel rendering of n pixels samples (j + 0.5) n / m - 0.5)."""
    out = []
    for shape in shapes:
        steps = [n / m for n, m in zip(shapes[0], shape)]
        size = [sizes.get(a, (1.0, None))[0] for a in order]
        out.append([{"type": "scale", "scale": [z * f for z, f in zip(size, steps)]},
                    {"type": "translation", "translation": [z * (f - 1) / 2 for z, f in zip(size, steps)]}])
    return out
