#!/usr/bin/env python
"""Take docs/napari.png: the whole napari window (layer list, dims slider, canvas) with an .mzc opened through
mzc's reader plugin, as a user's drag and drop does. Headless: Qt's offscreen platform draws the widgets, and the
OpenGL canvas (which a widget grab cannot see there) is rendered by vispy and pasted into its place. Needs an X
server for OpenGL, e.g.

    QT_QPA_PLATFORM=offscreen xvfb-run -a python tools/napari_screenshot.py testdata/SAMPLE.mzc docs/napari.png
"""
from __future__ import annotations

import sys


def main(path: str, png: str) -> None:
    import napari
    from napari.settings import get_settings
    from qtpy.QtCore import QPoint
    from qtpy.QtWidgets import QApplication
    from skimage.io import imsave
    from skimage.transform import resize

    get_settings().application.gui_notification_level = "none"  # no deprecation toast over the canvas
    viewer = napari.Viewer(show=True)
    viewer.window.resize(1100, 720)
    viewer.open(path, plugin=None)  # plugin=None: napari picks mzc's reader from the file name (npe2)
    viewer.reset_view()
    for _ in range(30):
        QApplication.processEvents()
    window = viewer.screenshot(canvas_only=False, flash=False)
    qt_canvas = viewer.window._qt_viewer.canvas
    widget = qt_canvas.native
    corner = widget.mapTo(viewer.window._qt_window, QPoint(0, 0))
    scene = qt_canvas._scene_canvas.render()
    h, w = widget.height(), widget.width()
    if scene.shape[:2] != (h, w):
        scene = (resize(scene, (h, w), order=1, preserve_range=True)).astype(window.dtype)
    window[corner.y():corner.y() + h, corner.x():corner.x() + w] = scene[..., :window.shape[2]]
    imsave(png, window, check_contrast=False)
    viewer.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
