"""`mzc decode x.mzc -o x.zarr`: OME-Zarr (NGFF 0.4) with a pyramid and physical sizes, read back by ome-zarr-py."""
from __future__ import annotations

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner

import mzc
from mzc.cli import cli

pytest.importorskip("zarr", reason="the [zarr] extra is not installed")
ome_zarr = pytest.importorskip("ome_zarr", reason="ome-zarr-py is not installed")
from ome_zarr.io import parse_url
from ome_zarr.reader import Reader


def read_ome(path):
    node = list(Reader(parse_url(str(path)))())[0]
    multiscales = node.metadata
    return [np.asarray(level) for level in node.data], multiscales


def test_ome_tiff_to_ome_zarr_keeps_axes_and_sizes(tmp_path, ome_path):
    out = tmp_path / "s.mzc"
    mzc.encode(str(ome_path), str(out))
    res = CliRunner().invoke(cli, ["decode", str(out), "-o", str(tmp_path / "s.zarr")])
    assert res.exit_code == 0, res.output
    levels, meta = read_ome(tmp_path / "s.zarr")
    original = tifffile.imread(ome_path)  # ZCYX
    np.testing.assert_array_equal(levels[0], original.transpose(1, 0, 2, 3))  # NGFF order c, z, y, x
    assert [a["name"] for a in meta["axes"]] == ["c", "z", "y", "x"]
    assert meta["axes"][2]["unit"] == "micrometer"
    scale = meta["coordinateTransformations"][0][0]["scale"]
    assert scale == pytest.approx([1.0, 1.5, 0.325, 0.325])


def test_imagej_stack_pyramid_levels_equal_scaled_decodes(tmp_path):
    rng = np.random.default_rng(5)
    data = rng.integers(0, 4000, (2, 3, 300, 260)).astype(np.uint16)
    src = tmp_path / "ij.tif"
    tifffile.imwrite(src, data, imagej=True, resolution=(1 / 0.2, 1 / 0.2),
                     metadata={"axes": "TZYX", "spacing": 2.0, "unit": "um", "finterval": 7.0})
    out = tmp_path / "ij.mzc"
    mzc.encode(str(src), str(out), codec="j2k", quality="40dB")
    result = mzc.decode(str(out), str(tmp_path / "ij.zarr"))
    assert result["ome_zarr"]["levels"] == 3
    levels, meta = read_ome(tmp_path / "ij.zarr")
    with mzc.open(str(out)) as mz:
        for k, level in enumerate(levels):
            np.testing.assert_array_equal(level, mz.read(scale=0.5 ** k))  # level k == decode --scale 2^-k
    assert [a["name"] for a in meta["axes"]] == ["t", "z", "y", "x"]
    scales = [t[0]["scale"] for t in meta["coordinateTransformations"]]
    assert scales[0] == pytest.approx([7.0, 2.0, 0.2, 0.2])
    assert scales[1][2:] == pytest.approx([0.4, 0.4]) and scales[2][2:] == pytest.approx([0.2 * 300 / 75, 0.2 * 260 / 65])


def test_zarr_output_rules(tmp_path, nuclei_path):
    out = tmp_path / "n.mzc"
    mzc.encode(str(nuclei_path), str(out))
    target = tmp_path / "n.zarr"
    runner = CliRunner()
    res = runner.invoke(cli, ["decode", str(out), "-o", str(target), "--roi", "0:10,0:10"])
    assert res.exit_code == 1 and "no --roi" in res.output and not target.exists()
    assert runner.invoke(cli, ["decode", str(out), "-o", str(target)]).exit_code == 0
    res = runner.invoke(cli, ["decode", str(out), "-o", str(target)])
    assert res.exit_code == 2 and "already exists" in res.output  # never overwritten without -f
    assert runner.invoke(cli, ["decode", str(out), "-o", str(target), "-f"]).exit_code == 0
    levels, meta = read_ome(target)
    np.testing.assert_array_equal(levels[0], tifffile.imread(nuclei_path))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".mzc-")]  # no temporary store left behind


def test_default_is_ome_zarr_0_5_on_zarr_v3_validated_by_ome_zarr_models(tmp_path, ome_path):
    import json

    import zarr
    models = pytest.importorskip("ome_zarr_models", reason="ome-zarr-models is not installed")
    out = tmp_path / "s.mzc"
    mzc.encode(str(ome_path), str(out))
    result = mzc.decode(str(out), str(tmp_path / "s.zarr"))
    assert result["ome_zarr"]["version"] == "0.5"
    root = json.loads((tmp_path / "s.zarr" / "zarr.json").read_text())
    assert root["zarr_format"] == 3 and root["attributes"]["ome"]["version"] == "0.5"
    image = models.open_ome_zarr(zarr.open_group(str(tmp_path / "s.zarr"), mode="r"))
    assert type(image).__module__.startswith("ome_zarr_models.v05")  # a valid NGFF 0.5 image (pydantic-checked)
    levels, meta = read_ome(tmp_path / "s.zarr")
    np.testing.assert_array_equal(levels[0], tifffile.imread(ome_path).transpose(1, 0, 2, 3))


def test_ngff_0_4_on_request(tmp_path, nuclei_path):
    import json
    out = tmp_path / "n.mzc"
    mzc.encode(str(nuclei_path), str(out))
    res = CliRunner().invoke(cli, ["decode", str(out), "-o", str(tmp_path / "n.zarr"), "--ngff", "0.4"])
    assert res.exit_code == 0, res.output
    attrs = json.loads((tmp_path / "n.zarr" / ".zattrs").read_text())
    assert attrs["multiscales"][0]["version"] == "0.4"
    levels, _ = read_ome(tmp_path / "n.zarr")
    np.testing.assert_array_equal(levels[0], tifffile.imread(nuclei_path))
    with mzc.open(str(out)) as mz:
        np.testing.assert_array_equal(levels[1], mz.read(scale=0.5))


def test_napari_ome_zarr_reads_it_back_with_physical_scale(tmp_path):
    reader = pytest.importorskip("napari_ome_zarr", reason="napari-ome-zarr is not installed").napari_get_reader
    rng = np.random.default_rng(3)
    data = rng.integers(0, 4000, (2, 260, 300)).astype(np.uint16)
    src = tmp_path / "ij.tif"
    tifffile.imwrite(src, data, imagej=True, resolution=(1 / 0.2, 1 / 0.2),
                     metadata={"axes": "ZYX", "spacing": 2.0, "unit": "um"})
    out = tmp_path / "ij.mzc"
    mzc.encode(str(src), str(out), chunks=(1, 130, 150))  # several chunks per plane
    mzc.decode(str(out), str(tmp_path / "ij.zarr"))
    [(levels, kwargs, kind)] = reader(str(tmp_path / "ij.zarr"))(str(tmp_path / "ij.zarr"))
    assert kind == "image" and kwargs["scale"] == pytest.approx([2.0, 0.2, 0.2])
    assert [level.shape for level in levels] == [(2, 260, 300), (2, 130, 150), (2, 65, 75)]
    np.testing.assert_array_equal(np.asarray(levels[0]), data)
    with mzc.open(str(out)) as mz:
        np.testing.assert_array_equal(np.asarray(levels[1]), mz.read(scale=0.5))  # chunk edges included
