"""napari opens .mzc files (npe2 manifest): lazily, multiscale, one layer per channel, contrast limits from the data
range, physical scale from the metadata, only visible chunks decoded; in napari's model and in a real Viewer
(show=False, Qt's offscreen platform, OpenGL through an X server); and bioio's BioImage opens them too."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
import tifffile

import mzc
from tests.conftest import ROOT

SHAPE = (4, 2, 300, 340)  # Z, C, Y, X: 3 pyramid levels (300, 150, 75), 3 x 3 tiles per plane


@pytest.fixture(scope="module")
def ome_file(tmp_path_factory):
    """A 2-channel OME-TIFF with physical sizes, encoded in 128 x 128 tiles."""
    folder = tmp_path_factory.mktemp("napari")
    rng = np.random.default_rng(11)
    yy, xx = np.mgrid[:SHAPE[2], :SHAPE[3]]
    blobs = 800 * np.exp(-(((yy - 150) / 60.0) ** 2 + ((xx - 170) / 80.0) ** 2))
    data = (blobs + rng.poisson(100, SHAPE)).astype(np.uint16)
    src = folder / "cells.ome.tif"
    tifffile.imwrite(src, data, ome=True, metadata={"axes": "ZCYX", "PhysicalSizeX": 0.25, "PhysicalSizeY": 0.25,
                                                    "PhysicalSizeZ": 2.0})
    out = folder / "cells.mzc"
    mzc.encode(str(src), str(out), chunks=(1, 1, 128, 128))
    return data, out


def napari_model():
    pytest.importorskip("napari", reason="napari is not installed (the [napari] extra)")
    from napari.components import ViewerModel
    from napari.plugins import _initialize_plugins
    _initialize_plugins()  # what napari.Viewer does at start: discover npe2 manifests
    return ViewerModel()


def test_the_npe2_manifest_is_valid_and_claims_mzc_files():
    npe2 = pytest.importorskip("npe2", reason="npe2 is not installed (the [napari] extra)")
    manifest = npe2.PluginManifest.from_distribution("mzc")
    assert manifest.name == "mzc"
    [reader] = manifest.contributions.readers
    assert reader.filename_patterns == ["*.mzc"]
    from mzc.integrations.napari_reader import napari_get_reader
    assert napari_get_reader("x.tif") is None and napari_get_reader(["a.mzc", "b.mzc"]) is not None


def test_napari_opens_it_lazily_as_a_multiscale_image_per_channel(ome_file, decodes):
    data, path = ome_file
    viewer = napari_model()
    layers = viewer.open(str(path), plugin=None)  # as a drag and drop: napari picks mzc's reader by the name
    assert [layer.name for layer in layers] == ["cells.mzc [C0]", "cells.mzc [C1]"]
    first = layers[0]
    assert first.source.reader_plugin == "mzc" and first.multiscale
    assert [level.shape for level in first.data] == [(4, 300, 340), (4, 150, 170), (4, 75, 85)]
    assert first.dtype == np.uint16 and tuple(first.axis_labels) == ("z", "y", "x")
    assert list(first.scale) == pytest.approx([2.0, 0.25, 0.25])
    with mzc.open(str(path)) as f:
        lo, hi = f.header["data_range"]
        assert list(first.contrast_limits) == [lo, hi]  # from the header: nothing decoded to find them
        planes = {f.grid.coords(i)[0] for i in decodes}
    assert len(planes) <= 2  # only displayed planes (napari's first slice, then the middle one), of 4
    tile = np.asarray(layers[1].data[0][2, 100:228, 30:200])
    np.testing.assert_array_equal(tile, data[2, 1, 100:228, 30:200])
    with mzc.open(str(path)) as f:
        np.testing.assert_array_equal(np.asarray(first.data[1][3]), f.read("3, 0, :, :", scale=0.5))


def test_rgb_and_single_channel_files(tmp_path, nuclei_path):
    viewer = napari_model()
    out = tmp_path / "n.mzc"
    mzc.encode(str(nuclei_path), str(out))
    [layer] = viewer.open(str(out), plugin="mzc")
    np.testing.assert_array_equal(np.asarray(layer.data[0] if layer.multiscale else layer.data),
                                  tifffile.imread(nuclei_path))
    rgb = np.random.default_rng(2).integers(0, 255, (70, 90, 3)).astype(np.uint8)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    mzc.encode(str(tmp_path / "rgb.tif"), str(tmp_path / "rgb.mzc"))
    [layer] = viewer.open(str(tmp_path / "rgb.mzc"), plugin="mzc")
    assert layer.rgb and layer.data.shape == (70, 90, 3)


def x_server():
    """An X display for OpenGL (Qt's offscreen platform draws GL through GLX): $DISPLAY, or a private Xvfb."""
    if os.environ.get("DISPLAY"):
        yield os.environ["DISPLAY"]
        return
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.skip("no X server for OpenGL: Qt's offscreen platform has no GL without one (apt-get install xvfb)")
    display = f":{os.getpid() % 500 + 100}"
    proc = subprocess.Popen([xvfb, display, "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        socket = f"/tmp/.X11-unix/X{display[1:]}"
        deadline = time.monotonic() + 10
        while not os.path.exists(socket) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        if not os.path.exists(socket):
            pytest.skip(f"Xvfb did not start on {display}")
        yield display
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def display():
    pytest.importorskip("napari", reason="napari is not installed (the [napari] extra)")
    pytest.importorskip("qtpy", reason="no Qt binding for napari's viewer")
    yield from x_server()


def test_a_real_napari_viewer_shows_it(ome_file, display, tmp_path):
    data, path = ome_file
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", DISPLAY=display, XDG_RUNTIME_DIR=str(tmp_path))
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "napari_viewer_check.py"), str(path),
                           str(tmp_path / "out.json")], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    shown = json.loads((tmp_path / "out.json").read_text())
    assert shown["plugin"] == "mzc" and shown["layers"] == ["cells.mzc [C0]", "cells.mzc [C1]"]
    assert shown["shape"] == [4, 300, 340] and shown["dtype"] == "uint16" and shown["levels"] == 3
    assert shown["scale"] == pytest.approx([2.0, 0.25, 0.25])
    assert shown["tile_equal"] and shown["rendered_std"] > 5  # the canvas drew an image, not a blank


def test_bioio_opens_it(ome_file):
    bioio = pytest.importorskip("bioio", reason="bioio is not installed (the [bioio] extra)")
    data, path = ome_file
    image = bioio.BioImage(str(path))
    assert type(image.reader).__module__ == "mzc.integrations.bioio_reader"
    assert image.dims.order == "TCZYX" and image.shape == (1, 2, 4, 300, 340)
    assert image.physical_pixel_sizes == (2.0, 0.25, 0.25)
    lazy = image.get_image_dask_data("ZYX", C=1)
    np.testing.assert_array_equal(lazy[1:3, 50:90].compute(), data[1:3, 1, 50:90])
    assert image.resolution_levels == (0, 1, 2)
    image.set_resolution_level(1)
    assert image.shape[-2:] == (150, 170) and image.physical_pixel_sizes.X == pytest.approx(0.5)
