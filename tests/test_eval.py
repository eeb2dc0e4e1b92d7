"""`mzc eval`: segmentation/intensity/ratiometric agreement between an original and its decoding, on real data where it
matters and on controlled edits (an object erased, intensities scaled) where the right answer is known."""
from __future__ import annotations

import json
import subprocess
import sys

import imagecodecs
import numpy as np
import pytest
import tifffile
from scipy import ndimage

import mzc
from mzc.analysis.evaluate import Reference, compare, evaluate
from mzc.analysis.objects import intensity_agreement, paired_test, shape_features
from mzc.analysis.segmentation import match, segment
from mzc.errors import MzcError

from .conftest import ROOT, real_file, write_tiff


def run(*args):
    return subprocess.run([sys.executable, "-m", "mzc", *map(str, args)], capture_output=True, text=True, cwd=ROOT)


def test_lossless_file_agrees_perfectly_on_real_nuclei(tmp_path):
    src = real_file("nuclei2d_hoechst_u16.tif")
    mzc.encode(str(src), str(tmp_path / "x.mzc"))
    rep = evaluate(str(src), str(tmp_path / "x.mzc"), ("segmentation", "intensity"))
    seg = rep["segmentation"]
    assert seg["n_objects_ref"] == seg["n_objects_test"] == seg["n_matched"] >= 5
    assert seg["f1"] == seg["precision"] == seg["recall"] == seg["mean_iou"] == 1.0
    assert all(t["t_p"] == 1.0 and t["wilcoxon_p"] == 1.0 and t["mean_rel_diff"] == 0 for t in
               seg["shape_tests"].values())
    inten = rep["intensity"]
    assert inten["n_objects"] == seg["n_objects_ref"]
    assert (inten["slope"], inten["pearson_r"], inten["max_rel_error"]) == (1.0, 1.0, 0.0)
    assert rep["ratio"] > 1 and rep["codec"] == "lossless"


def test_report_equals_direct_segmentation_and_matching_on_a_lossy_real_file(tmp_path):
    src = real_file("nuclei2d_hoechst_u16.tif")
    mzc.encode(str(src), str(tmp_path / "x.mzc"), codec="j2k", quality="400x")
    original = tifffile.imread(src)
    decoded = mzc.open(str(tmp_path / "x.mzc")).read()
    ref, test = segment(original), segment(decoded)
    m = match(ref, test)
    seg = evaluate(str(src), str(tmp_path / "x.mzc"))["segmentation"]
    assert (seg["n_objects_ref"], seg["n_objects_test"], seg["n_matched"]) == (m.n_ref, m.n_test, m.pairs.shape[1])
    assert seg["f1"] == pytest.approx(m.f1, abs=1e-6) and seg["mean_iou"] == pytest.approx(m.mean_iou, abs=1e-6)
    assert seg["mean_iou"] < 1.0  # 400x moves object borders
    area = shape_features(ref)["area"][m.pairs[0]], shape_features(test)["area"][m.pairs[1]]
    assert seg["shape_tests"]["area"]["n"] == m.pairs.shape[1]
    assert seg["shape_tests"]["area"]["mean_test"] == pytest.approx(np.mean(area[1]), rel=1e-5)


def erase_one_object(original: np.ndarray) -> tuple[np.ndarray, int]:
    """The smallest isolated object replaced by background noise; returns the edit and the original's count."""
    labels = segment(original)
    n = int(labels.max())
    rng = np.random.default_rng(0)
    background = original[~ndimage.binary_dilation(labels > 0, iterations=8)]
    areas = np.bincount(labels.ravel())
    isolated = [k for k in range(1, n + 1)
                if set(np.unique(labels[ndimage.binary_dilation(labels == k, iterations=6)])) == {0, k}]
    gone = ndimage.binary_dilation(labels == min(isolated, key=lambda k: areas[k]), iterations=6)
    edited = original.copy()
    edited[gone] = rng.choice(background, int(gone.sum()))
    return edited, n


def test_an_erased_object_costs_exactly_one_match(tmp_path, nuclei_path):
    edited, n = erase_one_object(tifffile.imread(nuclei_path))
    assert n >= 5
    write_tiff(tmp_path / "edited.tif", edited, "YX")
    seg = evaluate(str(nuclei_path), str(tmp_path / "edited.tif"))["segmentation"]
    assert seg["n_objects_ref"] == n and seg["n_objects_test"] == n - 1
    assert seg["recall"] == pytest.approx((n - 1) / n) and seg["precision"] == 1.0
    assert seg["f1"] == pytest.approx(2 * (n - 1) / (2 * n - 1))


def test_scaled_intensities_give_the_scale_as_slope(tmp_path, nuclei_path):
    original = tifffile.imread(nuclei_path)
    write_tiff(tmp_path / "brighter.tif", (original * 1.1).round().astype(np.uint16), "YX")
    inten = evaluate(str(nuclei_path), str(tmp_path / "brighter.tif"), ("intensity",))["intensity"]
    assert inten["slope"] == pytest.approx(1.1, abs=1e-3)
    assert inten["median_rel_error"] == pytest.approx(0.1, abs=1e-3)
    assert inten["pearson_r"] > 0.9999


def test_paired_tests_detect_a_shift_and_accept_identity():
    rng = np.random.default_rng(1)
    ref = rng.uniform(50, 500, 200)
    assert paired_test(ref, ref)["t_p"] == 1.0
    shifted = paired_test(ref, ref * 1.03 + rng.normal(0, 1, ref.size))
    assert shifted["t_p"] < 1e-6 and shifted["wilcoxon_p"] < 1e-6
    assert shifted["mean_rel_diff"] == pytest.approx(0.03, abs=0.005)
    noise_only = paired_test(ref, ref + rng.normal(0, 1, ref.size))
    assert noise_only["t_p"] > 1e-3
    assert paired_test(ref[:1], ref[:1] + 1)["t_p"] is None


def test_intensity_agreement_of_nothing_and_of_one_object():
    assert intensity_agreement(np.zeros(0), np.zeros(0))["slope"] is None
    one = intensity_agreement(np.array([10.0]), np.array([10.0]))
    assert one["slope"] == 1.0 and one["max_rel_error"] == 0.0


def test_ratiometric_lossless_is_exact_and_a_doubled_numerator_doubles_the_ratio(tmp_path):
    src = real_file("multichannel_bbbc022_u16.tif")
    original = tifffile.imread(src)
    mzc.encode(str(src), str(tmp_path / "x.mzc"))
    rat = evaluate(str(src), str(tmp_path / "x.mzc"), ("ratiometric",), ratio_channels=(1, 0))["ratiometric"]
    assert rat["pixels"] > 1000 and (rat["psnr_db"], rat["ssim"], rat["pearson_r"]) == (None, 1.0, 1.0)
    doubled = original.astype(np.int64)
    doubled[1] *= 2
    assert doubled.max() <= 65535
    write_tiff(tmp_path / "doubled.tif", doubled.astype(np.uint16), "CYX")
    rat2 = evaluate(str(src), str(tmp_path / "doubled.tif"), ("ratiometric",), ratio_channels=(1, 0))["ratiometric"]
    assert rat2["mean_ratio_test"] == pytest.approx(2 * rat["mean_ratio_ref"], rel=1e-5)
    assert rat2["pearson_r"] == pytest.approx(1.0, abs=1e-9) and rat2["psnr_db"] < 30


def test_ratiometric_on_lossy_3d_two_channel_stack(tmp_path):
    src = real_file("stack3d_stp_brain_u16.tif")
    mzc.encode(str(src), str(tmp_path / "x.mzc"), codec="j2k", quality="50x")
    rat = evaluate(str(src), str(tmp_path / "x.mzc"), ("ratiometric",))["ratiometric"]
    assert rat["channels"] == [0, 1] and rat["pixels"] > 100_000
    assert 0.5 < rat["pearson_r"] < 1 and 0.5 < rat["ssim"] < 1 and rat["psnr_db"] > 20


def test_planes_and_channels_of_a_stack_are_all_evaluated(ome_path, tmp_path):
    array = tifffile.imread(ome_path)  # ZCYX 8 x 2
    ref = Reference(array, "ZCYX")
    assert len(list(ref.keys())) == 16 and len(list(ref.keys(1))) == 8
    assert compare(ref, array)["segmentation"]["planes"] == 16
    assert compare(ref, array, channel=1)["segmentation"]["planes"] == 8
    with pytest.raises(MzcError, match="channel 2 does not exist"):
        compare(ref, array, channel=2)
    with pytest.raises(MzcError, match="differs"):
        compare(ref, array[:4])


def test_cli_json_and_png(tmp_path, nuclei_path):
    out = tmp_path / "x.mzc"
    assert run("encode", nuclei_path, "-o", out, "--codec", "j2k", "-q", "30x", "--quiet").returncode == 0
    proc = run("eval", nuclei_path, out, "--task", "segmentation", "--task", "intensity", "--json",
               "--png", tmp_path / "side.png")
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout)
    assert set(rep) >= {"segmentation", "intensity", "ratio", "codec"} and rep["segmentation"]["planes"] == 1
    png = imagecodecs.png_decode((tmp_path / "side.png").read_bytes())
    assert png.ndim == 3 and png.shape[1] > 3 * png.shape[0]  # four panels side by side
    human = run("eval", nuclei_path, out)
    assert human.returncode == 0 and "f1" in human.stderr and "paired tests" in human.stderr


def test_cli_plugin_segmenter_and_min_f1(tmp_path, nuclei_path):
    out = tmp_path / "x.mzc"
    run("encode", nuclei_path, "-o", out, "--quiet")
    proc = run("eval", nuclei_path, out, "--segmenter", "tests.segmenter_plugin:above_mean", "--json", "--min-f1", "1")
    assert proc.returncode == 0, proc.stderr
    seg = json.loads(proc.stdout)["segmentation"]
    assert seg["segmenter"] == "tests.segmenter_plugin:above_mean" and seg["f1"] == 1.0
    assert seg["n_objects_ref"] == ndimage.label(tifffile.imread(nuclei_path) >
                                                 tifffile.imread(nuclei_path).mean())[1]
    edited = write_tiff(tmp_path / "edited.tif", erase_one_object(tifffile.imread(nuclei_path))[0], "YX")
    f1 = json.loads(run("eval", nuclei_path, edited, "--json").stdout)["segmentation"]["f1"]
    assert f1 < 1
    assert run("eval", nuclei_path, edited, "--min-f1", f1).returncode == 0
    proc = run("eval", nuclei_path, edited, "--min-f1", "1")
    assert proc.returncode == 1 and proc.stderr.strip().splitlines()[-1].startswith("mzc: error: segmentation F1")


@pytest.mark.parametrize("args, message", [
    (["--task", "ratiometric"], "needs a file with a channel axis"),
    (["--channel", "3"], "channel 3 does not exist"),
    (["--segmenter", "nope"], "unknown segmenter"),
    (["--segmenter", "tests.segmenter_plugin:missing"], "cannot be loaded"),
    (["--segmenter", "tests.segmenter_plugin:wrong_shape"], "returned int32 (3, 3)"),
    (["--segmenter", "stardist"], "stardist"),
    (["--task", "intensity", "--min-f1", "0.9"], "--min-f1 needs --task segmentation"),
    (["--channels", "a,b", "--task", "ratiometric"], "expected two channel indices"),
])
def test_cli_errors_are_one_line_and_write_nothing(tmp_path, nuclei_path, args, message):
    out = tmp_path / "x.mzc"
    run("encode", nuclei_path, "-o", out, "--quiet")
    proc = run("eval", nuclei_path, out, *args, "--png", tmp_path / "p.png")
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mzc: error:") and message in lines[0], proc.stderr
    assert not (tmp_path / "p.png").exists() and not list(tmp_path.glob(".mzc-*"))


def test_cli_shape_mismatch_and_unreadable_input(tmp_path, nuclei_path, ome_path):
    out = tmp_path / "x.mzc"
    run("encode", ome_path, "-o", out, "--quiet")
    proc = run("eval", nuclei_path, out)
    assert proc.returncode == 1 and "differs from the original" in proc.stderr
    (tmp_path / "junk.tif").write_bytes(b"not a tiff at all")
    proc = run("eval", nuclei_path, tmp_path / "junk.tif")
    assert proc.returncode == 1 and proc.stderr.startswith("mzc: error:") and len(proc.stderr.splitlines()) == 1
