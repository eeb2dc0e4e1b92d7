"""Run by tests/test_napari.py in a child process (Qt and OpenGL live there, not in the test process): open an .mzc
in a real napari Viewer(show=False) as a user's drag and drop does, and report what napari shows as JSON.

    python tests/napari_viewer_check.py FILE.mzc OUT.json [SCREENSHOT.png]
"""
from __future__ import annotations

import json
import sys

import numpy as np


def main(path: str, out: str, png: str | None = None) -> None:
    import napari
    from qtpy.QtWidgets import QApplication

    import mzc
    viewer = napari.Viewer(show=False)
    layers = viewer.open(path, plugin=None)  # plugin=None: napari picks the reader from the file name (npe2)
    viewer.reset_view()
    for _ in range(10):
        QApplication.processEvents()
    canvas = viewer.window._qt_viewer.canvas._scene_canvas  # the vispy canvas: it renders offscreen
    image = canvas.render()
    first = layers[0]
    level0 = first.data[0] if first.multiscale else first.data
    with mzc.open(path) as f:
        channel = f.axes.index("C") if "C" in f.axes else None
        key = tuple(0 if k == channel else (slice(40, 104) if n > 104 else slice(None)) for k, n in enumerate(f.shape))
        tile = np.asarray(f[key])
    shown_key = tuple(k for i, k in enumerate(key) if i != channel)
    result = {"layers": [layer.name for layer in layers], "shape": list(level0.shape), "dtype": str(level0.dtype),
              "scale": [float(s) for s in first.scale], "contrast_limits": [float(c) for c in first.contrast_limits],
              "multiscale": bool(first.multiscale), "levels": len(first.data) if first.multiscale else 1,
              "tile_equal": bool(np.array_equal(np.asarray(level0[shown_key]), tile)),
              "rendered_std": float(image[..., :3].std()), "plugin": first.source.reader_plugin}
    if png:
        from skimage.io import imsave
        imsave(png, image, check_contrast=False)
    viewer.close()
    with open(out, "w") as fh:
        json.dump(result, fh)


if __name__ == "__main__":
    main(*sys.argv[1:])
