"""napari opens .mzc files (npe2 manifest napari.yaml, entry point `napari.manifest`).

A file becomes one image layer per channel over the file's lazy multiscale pyramid (io/lazy.py): napari asks only
for the level and the region it displays, so opening costs the header and the chunk index whatever the file's size,
and only visible chunks are decoded. Contrast limits are the file's data range (stored in its header, so nothing is
decoded to find them), and the layer's scale and axis labels come from the source TIFF's metadata.
"""
from __future__ import annotations

import os

from ..io.omezarr import physical_sizes
from ..io.reader import MzcFile


def napari_get_reader(path):
    """The reader for `path` (a .mzc file or a list of them), or None so that napari asks another plug-in."""
    paths = path if isinstance(path, (list, tuple)) else [path]
    if not paths or not all(str(p).lower().endswith(".mzc") for p in paths):
        return None
    return read_mzc


def read_mzc(path) -> list[tuple]:
    paths = path if isinstance(path, (list, tuple)) else [path]
    return [layer_data(os.fspath(p)) for p in paths]


def layer_data(path: str) -> tuple:
    """(data, layer keyword arguments, "image"): napari's layer data tuple for one file."""
    with MzcFile.open(path) as mz:
        pyramid, axes, metadata = mz.pyramid(), mz.axes, mz.metadata
        data_range = mz.header.get("data_range")
    rgb = axes.endswith("S") and pyramid[0].shape[-1] in (3, 4) and metadata.get("photometric") == 2
    channel = next((k for k, a in enumerate(axes) if a == "C" or (a == "S" and not rgb)), None)
    shown = [a for k, a in enumerate(axes) if k != channel and not (rgb and a == "S")]
    sizes = physical_sizes(metadata)
    name = os.path.basename(path)
    kwargs = {"name": name, "multiscale": len(pyramid) > 1, "rgb": rgb,
              "scale": [sizes.get(a, (1.0, None))[0] for a in shown],
              "axis_labels": [a.lower() for a in shown],
              "metadata": {"mzc_path": path, "axes": axes, "levels": [round(s, 6) for s in mz.levels]}}
    units = [sizes.get(a, (None, None))[1] for a in shown]
    if all(units):
        kwargs["units"] = units
    if isinstance(data_range, (list, tuple)) and len(data_range) == 2 and data_range[0] < data_range[1] and not rgb:
        kwargs["contrast_limits"] = [float(data_range[0]), float(data_range[1])]
    if channel is not None:
        n = pyramid[0].shape[channel]
        kwargs.update(channel_axis=channel, name=[f"{name} [{axes[channel]}{i}]" for i in range(n)])
    return (pyramid if len(pyramid) > 1 else pyramid[0]), kwargs, "image"
