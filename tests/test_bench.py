"""`mzc bench`: plain baselines land on the target ratio, rows are honest (sizes, fidelity), unreachable targets are
rows with an error, and the report folder (JSON, markdown, plots) is complete."""
from __future__ import annotations

import json
import subprocess
import sys

import imagecodecs
import numpy as np
import pytest
import tifffile

from mzc.analysis.baselines import plain_ids, run_plain
from mzc.analysis.bench import BenchOptions, points, run
from mzc.errors import MzcError

from .conftest import ROOT, real_file


def psnr(a, b):
    d = a.astype(np.float64) - b.astype(np.float64)
    return 10 * np.log10((float(a.max()) - float(a.min())) ** 2 / np.mean(d * d))


@pytest.mark.parametrize("cid", [c for c in plain_ids() if c != "jpegls"])
def test_plain_baselines_reach_the_ratio_on_real_data(cid):
    a = tifffile.imread(real_file("nuclei2d_hoechst_u16.tif"))
    res = run_plain(cid, a, "YX", 50.0)
    assert abs(a.nbytes / res.nbytes / 50.0 - 1) <= 0.05
    assert res.decoded.shape == a.shape and res.decoded.dtype == a.dtype
    assert 40 < psnr(a, res.decoded) < 60  # 50x on this image: ~45-51 dB for every codec (bench_lossy)


def test_plain_jpegls_below_its_lossless_ratio_is_exact(nuclei_path):
    a = tifffile.imread(nuclei_path)
    res = run_plain("jpegls", a, "YX", 1.5)
    assert res.knob == 0 and np.array_equal(res.decoded, a)
    near = run_plain("jpegls", a, "YX", 6.0)
    assert near.knob > 0 and np.abs(near.decoded.astype(int) - a).max() <= near.knob


def test_plain_baseline_reassembles_a_multichannel_stack(ome_path):
    a = tifffile.imread(ome_path)  # ZCYX
    res = run_plain("j2k", a, "ZCYX", 8.0)
    assert res.decoded.shape == a.shape
    assert psnr(a, res.decoded) > 35  # planes put back in the wrong place would be far worse
    for z, c in [(0, 1), (7, 0)]:
        assert psnr(a[z, c], res.decoded[z, c]) > 30


def test_points_per_codec():
    opts = BenchOptions(ratios=(10, 50))
    assert [p[0] for p in points("lossless", opts)] == ["default"]
    assert points("nearlossless", opts) == [("E=1", {"max_error": 1}), ("E=4", {"max_error": 4}),
                                            ("E=16", {"max_error": 16})]
    assert [p[0] for p in points("noise", opts)] == ["K=0.5", "default", "K=2"]
    assert points("bounded", opts) == [("K=1", {"codec": "j2k", "noise": 1.0})]
    assert [p[0] for p in points("j2k", opts)] == ["default", "10x", "50x"]
    assert [p[0] for p in points("auto", opts)] == ["10x", "50x"]
    assert points("plain:sperr", opts) == [("10x", 10.0), ("50x", 50.0)]
    assert points("inr", BenchOptions(ratios=(64,), time_budget=5))[1][1]["time_budget"] == 5
    with pytest.raises(MzcError, match="unknown codec"):
        BenchOptions(codecs=("j2k", "zip"))
    with pytest.raises(MzcError, match="> 1"):
        BenchOptions(ratios=(0.5,))


def test_bench_rows_and_report_folder(tmp_path, nuclei_path):
    opts = BenchOptions(codecs=("lossless", "nearlossless", "noise", "j2k", "plain:htj2k"), ratios=(10, 100000),
                        tasks=("segmentation", "intensity"))
    rows = run([str(nuclei_path)], opts, str(tmp_path / "rep"))
    by = {(r["codec"], r["target"]): r for r in rows}
    assert set(by) == {("lossless", "default"), ("nearlossless", "E=1"), ("nearlossless", "E=4"),
                       ("nearlossless", "E=16"), ("noise", "K=0.5"), ("noise", "default"), ("noise", "K=2"),
                       ("j2k", "default"), ("j2k", "10x"), ("j2k", "100000x"), ("plain:htj2k", "10x"),
                       ("plain:htj2k", "100000x")}
    near = [by[("nearlossless", f"E={e}")] for e in (1, 4, 16)]
    assert [r["max_abs_error"] for r in near] == [1, 4, 16]  # this noisy image uses every bound fully
    assert near[0]["ratio"] < near[1]["ratio"] < near[2]["ratio"]
    assert by[("noise", "K=0.5")]["ratio"] < by[("noise", "default")]["ratio"] < by[("noise", "K=2")]["ratio"]
    raw = tifffile.imread(nuclei_path).nbytes
    lossless = by[("lossless", "default")]
    assert lossless["psnr_db"] is None and lossless["max_abs_error"] == 0 and lossless["ratio"] == round(raw / lossless["bytes"], 3)
    assert lossless["eval"]["segmentation"]["f1"] == 1.0 and lossless["eval"]["intensity"]["slope"] == 1.0
    assert abs(by[("j2k", "10x")]["ratio"] / 10 - 1) <= 0.1
    assert by[("j2k", "default")]["psnr_db"] >= 49.9  # the default lossy target is 50 dB
    assert "cannot be met" in by[("j2k", "100000x")]["error"]
    assert by[("noise", "default")]["max_abs_error"] > 0
    rep = tmp_path / "rep"
    saved = json.loads((rep / "bench.json").read_text())
    assert saved["rows"] == json.loads(json.dumps(rows, default=str)) and saved["meta"]["tasks"] == list(opts.tasks)
    md = (rep / "bench.md").read_text()
    summary, _, table = md.partition("## nuclei")
    assert table.count("\n| ") == len(rows) + 1 and "not reached" in table and "seg F1" in table
    assert "| lossless | default | " in table and "| exact |" in table  # an exact decoding's PSNR, not "-"
    # the F1 summary: one row per codec measured at that target, the worst file last
    default = summary.split("at each mode's default setting")[1].split("###")[0]
    assert {line.split(" | ")[0] for line in default.splitlines() if line.startswith("| ") and "---" not in line} == \
        {"| codec", "| lossless", "| noise", "| j2k"}
    assert f"| j2k | {by[('j2k', 'default')]['eval']['segmentation']['f1']:.3f} |" in default
    for name in ("rd_psnr.png", "rd_ssim.png"):
        assert imagecodecs.png_decode((rep / name).read_bytes()).ndim == 3


def test_bench_cli(tmp_path, nuclei_path):
    proc = subprocess.run([sys.executable, "-m", "mzc", "bench", str(nuclei_path), "--codecs", "plain:jpegls,auto",
                           "--ratios", "4", "-o", str(tmp_path / "r"), "--json", "--quiet"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(r["codec"], r["target"]) for r in rows] == [("plain:jpegls", "4x"), ("auto", "4x")]
    assert (tmp_path / "r" / "bench.md").is_file()


@pytest.mark.parametrize("args, message", [
    (["--codecs", "zip"], "unknown codec 'zip'"),
    (["--ratios", "ten"], "expected a comma-separated list"),
    (["--ratios", "1"], "> 1"),
    (["--eval", "counting"], "--eval 'counting'"),
])
def test_bench_cli_errors(tmp_path, nuclei_path, args, message):
    proc = subprocess.run([sys.executable, "-m", "mzc", "bench", str(nuclei_path), *args, "-o", str(tmp_path / "r")],
                          capture_output=True, text=True, cwd=ROOT)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1 and lines[0].startswith("mzc: error:") and message in lines[0]
    assert not (tmp_path / "r").exists()


def test_bench_cli_missing_data(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "mzc", "bench", str(tmp_path / "nope.tif")],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 1 and "no such file or folder" in proc.stderr


def test_noise_reference_adds_one_sigma_of_each_channels_own_noise():
    """reference:noise perturbs each channel by its own fitted Poisson-Gaussian noise: the added difference,
    divided by the true sigma(x), has unit spread; channels with different gains get different models."""
    from mzc.analysis.noise_reference import renoise
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[:256, :320]
    clean = 300 + 2500 * (0.5 + 0.5 * np.sin(yy / 23.0) * np.cos(xx / 31.0))
    gains = (2.0, 8.0)
    stack = np.stack([clean + rng.normal(0, 1, clean.shape) * np.sqrt(g * clean + 100) for g in gains])
    stack = np.clip(np.rint(stack), 0, 65535).astype(np.uint16)  # CYX
    noisy, models = renoise(stack, "CYX")
    assert noisy.shape == stack.shape and noisy.dtype == stack.dtype
    for c, (g, model) in enumerate(zip(gains, models)):
        assert model.a == pytest.approx(g, rel=0.15)
        z = (noisy[c].astype(float) - stack[c]) / np.sqrt(g * stack[c] + 100)
        assert abs(z.mean()) < 0.02 and z.std() == pytest.approx(1.0, rel=0.1)
    again, _ = renoise(stack, "CYX")
    assert np.array_equal(again, noisy)  # seeded: the same yardstick every run


def test_noise_reference_row(tmp_path, nuclei_path):
    rows = run([str(nuclei_path)], BenchOptions(codecs=("reference:noise", "noise"), tasks=("segmentation",)),
               str(tmp_path / "rep"))
    ref = next(r for r in rows if r["codec"] == "reference:noise")
    assert ref["target"] == "1 sigma" and ref["ratio"] == 1.0 and ref["encode_MBps"] is None
    assert 0 < ref["eval"]["segmentation"]["f1"] <= 1 and ref["noise_models"][0]["a"] > 0
    within = next(r for r in rows if r["codec"] == "noise" and r["target"] == "default")
    assert within["psnr_db"] > ref["psnr_db"]  # coding within 1 sigma moves pixels less than 1 sigma of noise
    md = (tmp_path / "rep" / "bench.md").read_text()
    assert "| reference:noise | " in md.split("## nuclei")[0]  # the yardstick row of the F1 summary


def test_f1_summary_names_the_ratio_a_codec_reached_instead_of_the_target():
    from mzc.analysis.benchreport import f1_summary

    def row(codec, target, ratio, f1):
        return {"file": "a.tif", "codec": codec, "target": target, "ratio": ratio,
                "eval": {"segmentation": {"f1": f1}}}
    rows = [row("learned", "200x", 25.67, 0.966), row("j2k", "200x", 202.1, 0.5), row("j2k", "default", 20.9, 1.0)]
    text = "\n".join(f1_summary(rows, ["segmentation"]))
    assert "| learned | 0.966 (at 25.7x) | 0.966 |" in text
    assert "| j2k | 0.500 | 0.500 |" in text and "| j2k | 1.000 | 1.000 |" in text
