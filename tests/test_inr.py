"""INR and hybrid codecs: real-ratio targets, regions and scales equal to the full decode, determinism, native 3-D,
guidance, hostile payloads, decoding without PyTorch."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import msgpack
import numpy as np
import pytest
import tifffile

import mzc
from mzc import pool as parallel
from mzc.codecs.neural import field as neural_field
from mzc.codecs.neural import field_fit
from mzc.codecs.neural.field import Field, evaluate, pack, quantize, row_steps, unpack
from mzc.errors import MzcError
from mzc.metrics import psnr

from .conftest import real_file, write_tiff

pytest.importorskip("torch")

FAST_STEPS = 80


@pytest.fixture(autouse=True)
def few_steps(monkeypatch):
    """Tests check behaviour, not the last dB: short fits."""
    monkeypatch.setitem(field_fit.DEFAULT_STEPS, "grid", FAST_STEPS)
    monkeypatch.setitem(field_fit.DEFAULT_STEPS, "siren", FAST_STEPS)


@pytest.fixture(scope="module")
def real_crop():
    """A 256x320 crop of the real 12-bit nuclei image (kept in memory and tmp only)."""
    data = tifffile.imread(real_file("nuclei2d_hoechst_u16.tif"))
    return np.ascontiguousarray(data[300:556, 400:720])


def encode(tmp_path, data, axes, codec="inr", quality="64x", name="x", **opts):
    src = write_tiff(tmp_path / f"{name}.tif", data, axes)
    out = tmp_path / f"{name}.mzc"
    rep = mzc.encode(str(src), str(out), codec=codec, quality=quality, workers=1, **opts)
    return out, rep


def data_psnr(a, b):
    d = a.astype(np.float64) - b.astype(np.float64)
    return psnr(float(np.mean(d * d)), float(a.max()) - float(a.min()))


@pytest.mark.parametrize("codec, quality", [("inr", "64x"), ("inr", "512x"), ("hybrid", "256x")])
def test_real_ratio_within_five_percent_and_true_fidelity(tmp_path, real_crop, codec, quality):
    if quality != "64x":  # the whole 1000x1200 image: a crop is too small for that ratio
        real_crop = tifffile.imread(real_file("nuclei2d_hoechst_u16.tif"))
    out, rep = encode(tmp_path, real_crop, "YX", codec, quality)
    target = float(quality[:-1])
    assert abs(rep["ratio"] / target - 1) <= 0.05
    assert rep["bytes_out"] == out.stat().st_size
    back = mzc.open(str(out)).read()
    assert back.shape == real_crop.shape and back.dtype == real_crop.dtype
    assert rep["psnr_db"] == pytest.approx(data_psnr(real_crop, back), abs=1e-3)
    assert rep["max_abs_error"] == int(np.abs(back.astype(int) - real_crop).max())
    # a fit that learned the image, not a constant: far better than the mean image
    mean_psnr = data_psnr(real_crop, np.full_like(real_crop, int(real_crop.mean())))
    assert rep["psnr_db"] > mean_psnr + 8


@pytest.mark.parametrize("source, ratio", [("nuclei", 64), ("stp", 512)])
def test_hybrid_keeps_the_better_of_field_and_base_alone(tmp_path, real_crop, monkeypatch, source, ratio):
    """Each chunk is coded as base + field and as the base alone at the whole budget; the smaller squared error
    (decoded as a reader decodes) is stored, and a chunk without a field decodes to exactly its J2K base."""
    from mzc.codecs.classic import J2K
    from mzc.codecs.neural import hybrid
    block = real_crop if source == "nuclei" else \
        np.ascontiguousarray(tifffile.imread(real_file("stack3d_stp_brain_u16.tif"))[:4, 0, :256, :320])
    seen = []
    original = hybrid._sse
    monkeypatch.setattr(hybrid, "_sse", lambda c, body, b: seen.append((original(c, body, b), body)) or seen[-1][0])
    codec = hybrid.Hybrid().with_budget(block.dtype.itemsize / ratio)
    body, params = codec.encode(block)
    assert len(seen) == 2 and body == min(seen, key=lambda t: t[0])[1]
    m = msgpack.unpackb(body, raw=False)
    decoded = codec.decode(body, block.shape, block.dtype, params)
    if m["field"] is None:
        planes = block.reshape(-1, *block.shape[-2:])
        j2k = J2K(knob=m["knob"])
        alone = np.stack([j2k.decode(code, p.shape, p.dtype, prm) for p in planes for code, prm in [j2k.encode(p)]])
        assert np.array_equal(decoded.reshape(alone.shape), alone)
    assert len(body) <= block.nbytes / ratio * 1.05


@pytest.mark.parametrize("codec", ["inr", "inr:siren", "hybrid"])
def test_region_equals_same_region_of_full_decode(tmp_path, real_crop, codec):
    out, _ = encode(tmp_path, real_crop[:128, :160], "YX", codec, "16x")
    with mzc.open(str(out)) as f:
        for scale in (1.0, 0.5, 2.0, 0.3):
            full = f.read(scale=scale)
            assert full.shape == (round(128 * scale), round(160 * scale))
            for region in [(slice(10, 30), slice(3, 41)), (slice(0, full.shape[0]), slice(full.shape[1] - 5, None)),
                           (7, slice(None))]:
                assert np.array_equal(f.read(region, scale=scale), full[region])


def test_region_decode_evaluates_only_the_region(tmp_path, real_crop, monkeypatch):
    out, _ = encode(tmp_path, real_crop, "YX")
    seen = []
    original = neural_field.evaluate
    monkeypatch.setattr("mzc.codecs.neural.inr.evaluate", lambda f, pos: seen.append([len(p) for p in pos]) or original(f, pos))
    mzc.open(str(out)).read((slice(100, 132), slice(0, 16)))
    assert seen == [[32, 16]]


def test_scaled_decode_samples_the_field_between_pixels(tmp_path, real_crop):
    out, _ = encode(tmp_path, real_crop, "YX")
    with mzc.open(str(out)) as f:
        full = f.read().astype(np.float64)
        half = f.read(scale=0.5).astype(np.float64)
        double = f.read(scale=2.0)
    # scale 0.5 samples the midpoints of 2x2 pixel groups: close to their mean (the field is smooth at 64x)
    pooled = full.reshape(128, 2, 160, 2).mean(axis=(1, 3))
    assert np.abs(half - pooled).mean() < 0.01 * (full.max() - full.min())
    # scale 2 renders 4 samples per pixel around that pixel's centre
    assert np.abs(double[1::2, 1::2].astype(np.float64) - full).mean() < 0.02 * (full.max() - full.min())


def test_decode_bit_identical_across_workers_and_threads(tmp_path, real_crop, monkeypatch):
    data = np.concatenate([real_crop[None, :128]] * 3)
    out, _ = encode(tmp_path, data, "TYX", "inr", "64x")
    one = mzc.open(str(out)).read(workers=1)
    monkeypatch.setattr(parallel, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr("mzc.io.reader.useful_workers", lambda w, n, k: min(w, k))
    two = mzc.open(str(out)).read(workers=2)
    assert np.array_equal(one, two)
    digests = set()
    for threads in ("1", "2"):
        code = ("import hashlib,sys,mzc; a=mzc.open(sys.argv[1]).read(); "
                "print(hashlib.sha256(a.tobytes()).hexdigest())")
        env = {"OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
               "PATH": "/usr/bin:/bin"}
        proc = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True, env=env)
        assert proc.returncode == 0, proc.stderr
        digests.add(proc.stdout.strip())
    assert digests == {hashlib.sha256(one.tobytes()).hexdigest()}


def test_native_3d_field_per_channel(tmp_path, ome_path):
    with tifffile.TiffFile(ome_path) as tif:
        data = tif.asarray()  # ZCYX (8, 2, 96, 128)
    out, rep = encode(tmp_path, data, "ZCYX", "inr", "32x")
    with mzc.open(str(out)) as f:
        assert f.grid.chunks[0] == 8 and f.grid.chunks[1] == 1  # one 3-D field per channel
        full = f.read()
        assert np.array_equal(f.read((slice(2, 5), 1, slice(10, 40), slice(None))), full[2:5, 1, 10:40, :])
        assert np.array_equal(f.read((slice(2, 5), 1, slice(None), slice(None)), scale=0.5),
                              f.read(scale=0.5)[2:5, 1])
    assert abs(rep["ratio"] / 32 - 1) <= 0.05
    assert rep["psnr_db"] == pytest.approx(data_psnr(data, full), abs=1e-3)


def test_decoding_needs_no_torch(tmp_path, real_crop):
    out, _ = encode(tmp_path, real_crop, "YX", "hybrid", "64x")
    code = ("import sys; sys.modules['torch'] = None; sys.modules['compressai'] = None\n"
            "import hashlib, mzc; a = mzc.open(sys.argv[1]).read(); print(hashlib.sha256(a.tobytes()).hexdigest())")
    proc = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == hashlib.sha256(mzc.open(str(out)).read().tobytes()).hexdigest()


def test_guidance_weights_reach_the_fit(tmp_path, monkeypatch):
    """--guide segmentation hands the fit loss weights 4x on the Otsu foreground and 8x on a 2-px band around object
    borders. (Whether that lowers the foreground error is not asserted: measured on this image at 16x-64x with 80 and
    400 steps, it did in only 2 of 5 and 1 of 5 ratios; issue 4 stays open on it.)"""
    from mzc.codecs.neural import guidance
    from mzc.foreground import foreground
    rng = np.random.default_rng(3)
    img = np.full((256, 256), 300.0)
    yy, xx = np.mgrid[:256, :256]
    for cy, cx in rng.uniform(20, 236, (20, 2)):
        img += 1500 * (np.hypot(yy - cy, xx - cx) < rng.uniform(6, 11))
    img = rng.poisson(img).astype(np.uint16)
    fg = foreground(img)
    assert 0.05 < fg.mean() < 0.5
    seen = []
    original = field_fit.fit  # the codec imports it at encode time (torch stays out of decoding)
    monkeypatch.setattr(field_fit, "fit", lambda u, opts, lo, span: seen.append(opts.weights) or original(u, opts, lo,
                                                                                                       span))
    for guide in (None, "segmentation"):
        out, rep = encode(tmp_path, img, "YX", "inr", "48x", name=f"g{guide}", guide=guide)
        assert abs(rep["ratio"] / 48 - 1) <= 0.05
    unguided, guided = seen[0], seen[-1]
    assert unguided is None
    np.testing.assert_array_equal(guided, guidance.weights(img, "segmentation"))
    assert set(np.unique(guided[fg])) <= {guidance.FOREGROUND_WEIGHT, guidance.BOUNDARY_WEIGHT}
    assert np.all(guided[~fg] <= guidance.BOUNDARY_WEIGHT) and (guided[~fg] == 1).mean() > 0.9


def test_time_budget_caps_the_fit(tmp_path, real_crop, monkeypatch):
    import time
    monkeypatch.setitem(field_fit.DEFAULT_STEPS, "grid", 10 ** 7)
    t = time.perf_counter()
    _, rep = encode(tmp_path, real_crop, "YX", "inr", "64x", time_budget=3)
    assert time.perf_counter() - t < 60  # fit capped at ~3 s; the rest is quantization and the check
    assert abs(rep["ratio"] / 64 - 1) <= 0.05


def test_a_fine_tune_that_grows_the_stream_is_requantized_then_tuned_again(real_crop, monkeypatch):
    """When the quantization-aware fine-tune makes the field too big, the step is searched again and the field
    fine-tuned at that step before it is stored (re-quantizing without it cost 3.7 dB on brightfield at 64x)."""
    state = {"searching": False, "stored": 0, "searches": 0}
    search, packed = field_fit._step_for_budget, field_fit._packed

    def spy_search(*args):
        state["searching"], state["searches"] = True, state["searches"] + 1
        try:
            return search(*args)
        finally:
            state["searching"] = False

    def spy_packed(*args):
        body = packed(*args)
        if not state["searching"]:
            state["stored"] += 1
            if state["stored"] == 1:
                return body + bytes(1 << 20)  # the first fine-tune 'grew' the stream past the budget
        return body

    tuned_at = []  # the quantization steps each fine-tune step ran with
    fake_quant = field_fit._fake_quant

    def spy_fake_quant(torch, params, steps, n_grids):
        if not tuned_at or tuned_at[-1] is not steps:
            tuned_at.append(steps)
        return fake_quant(torch, params, steps, n_grids)

    monkeypatch.setattr(field_fit, "_step_for_budget", spy_search)
    monkeypatch.setattr(field_fit, "_packed", spy_packed)
    monkeypatch.setattr(field_fit, "_fake_quant", spy_fake_quant)
    u = (real_crop.astype(np.float32) - real_crop.min()) / np.ptp(real_crop)
    budget = real_crop.nbytes / 64
    body = field_fit.fit(u, field_fit.FitOptions(budget), float(real_crop.min()), float(np.ptp(real_crop)))
    assert state == {"searching": False, "stored": 2, "searches": 2}  # a second step search ...
    assert len(tuned_at) == 2 and tuned_at[0][0][0] < tuned_at[1][0][0]  # ... and a fine-tune at its coarser step
    assert len(body) <= budget and unpack(body, real_crop.shape).extent == real_crop.shape


def test_pack_unpack_round_trip_is_exact():
    rng = np.random.default_rng(0)
    f = Field("grid", (40, 50), 10.0, 300.0, (16.0, 8.0), 2, (8, 8))
    f.params = [rng.normal(0, 0.1, s).astype(np.float32) for s in neural_field.param_shapes(f)]
    steps = row_steps(f.params, "grid", 2, 0.3)
    ints = quantize(f.params, steps, 2)
    g = unpack(pack(f, steps, ints), (40, 50))
    for p, q, st, i in zip(g.params, ints, steps, range(len(ints))):
        assert np.array_equal(np.rint(p / st.reshape(neural_field._rows_axis(p, i < 2))), q)
    pos = [np.arange(40, dtype=np.float32), np.arange(50, dtype=np.float32)]
    assert evaluate(g, pos).shape == (40, 50)


def test_extreme_grid_rows_pack_at_the_finest_step():
    """A grid row that is quiet but for one node at +max beside one at -max (a saturated spot beside a dark one in a
    residual), at a step far below its RMS: the integers hit their cap, and the delta of the two neighbours must
    still fit the 16-bit stream (found on foci2d with --codec hybrid: 'quantized weight out of range')."""
    f = Field("grid", (400, 500), 0.0, 1.0, (16.0, 8.0), 2, (8, 8))
    f.params = [np.zeros(s, np.float32) for s in neural_field.param_shapes(f)]
    fine = f.params[1]
    fine[:, 10, 20], fine[:, 10, 21] = 1.0, -1.0
    steps = row_steps(f.params, "grid", 2, 1e-3)
    ints = quantize(f.params, steps, 2)
    assert np.abs(ints[1]).max() > 8000  # the step is set by the integer cap, not by the RMS
    g = unpack(pack(f, steps, ints), (400, 500))
    for p, q, st, i in zip(g.params, ints, steps, range(len(ints))):
        assert np.array_equal(np.rint(p / st.reshape(neural_field._rows_axis(p, i < 2))), q)
    assert np.abs(g.params[1] - fine).max() <= steps[1].max()


def hostile(body: bytes, **changes) -> bytes:
    m = msgpack.unpackb(body, raw=False)
    m.update(changes)
    return msgpack.packb(m, use_bin_type=True)


def test_hostile_payloads_rejected():
    rng = np.random.default_rng(1)
    f = Field("grid", (40, 50), 0.0, 1.0, (16.0, 8.0), 2, (8, 8))
    f.params = [rng.normal(0, 0.1, s).astype(np.float32) for s in neural_field.param_shapes(f)]
    steps = row_steps(f.params, "grid", 2, 0.3)
    body = pack(f, steps, quantize(f.params, steps, 2))
    cases = [b"\x00garbage", msgpack.packb([1, 2]), hostile(body, net="mlp"), hostile(body, extent=[40, 51]),
             hostile(body, cells=[0.001]), hostile(body, widths=[100000]), hostile(body, features=10 ** 6),
             hostile(body, extent=[1 << 20, 1 << 20], cells=[0.5]), hostile(body, steps=b"\x00" * 3),
             hostile(body, steps=b"\x00\x7c" * 38),  # 38 infinite steps
             hostile(body, q=b"\x28\xb5\x2f\xfd" + b"\x00" * 8), hostile(body, w=3), hostile(body, offset=float("nan")),
             hostile(body, omegas=[30.0])]
    for bad in cases:
        with pytest.raises(MzcError):
            unpack(bad, (40, 50))


def test_generic_scale_on_a_classic_file(tmp_path, nuclei_path):
    src = tmp_path / "n.tif"
    data = tifffile.imread(nuclei_path)
    write_tiff(src, data, "YX")
    mzc.encode(str(src), str(tmp_path / "n.mzc"), workers=1)  # lossless
    half = mzc.open(str(tmp_path / "n.mzc")).read(scale=0.5)
    # scale 0.5 samples the centre of each 2x2 group: linear interpolation = the group's mean, rounded
    a = data.astype(np.float32)
    rows = a[0::2] * np.float32(0.5) + a[1::2] * np.float32(0.5)
    expected = np.rint(rows[:, 0::2] * np.float32(0.5) + rows[:, 1::2] * np.float32(0.5)).astype(np.uint16)
    assert np.array_equal(half, expected)


def run_cli(args):
    proc = subprocess.run([sys.executable, "-m", "mzc", *args], capture_output=True, text=True)
    return proc.returncode, proc.stdout, proc.stderr


def test_cli_inr_round_trip_and_errors(tmp_path, nuclei_path):
    src = tmp_path / "n.tif"
    src.write_bytes(nuclei_path.read_bytes())
    code, out, err = run_cli(["encode", str(src), "--codec", "inr", "-q", "48x", "--time-budget", "5", "--json"])
    assert code == 0, err
    rep = json.loads(out)
    assert rep["codec"] == "inr" and abs(rep["ratio"] / 48 - 1) <= 0.05
    code, out, err = run_cli(["decode", str(src.with_suffix(".mzc")), "-o", str(tmp_path / "h.tif"),
                              "--scale", "0.5", "--roi", "0:64,10:74", "--json"])
    assert code == 0, err
    assert tifffile.imread(tmp_path / "h.tif").shape == (64, 64)
    code, _, err = run_cli(["decode", str(src.with_suffix(".mzc")), "-o", str(tmp_path / "full.tif")])
    assert code == 0, err  # the streamed TIFF path (whole chunks) gives the same bits as a sampled read
    assert np.array_equal(tifffile.imread(tmp_path / "full.tif"), mzc.open(str(src.with_suffix(".mzc"))).read())
    for args, message in [(["--codec", "inr", "-q", "40dB"], "give a ratio"),
                          (["--codec", "j2k", "-q", "20x", "--guide", "segmentation"], "--guide and --time-budget"),
                          (["--codec", "inr", "-q", "100000x"], "cannot be met")]:
        code, out, err = run_cli(["encode", str(src), "-o", str(tmp_path / "bad.mzc"), *args])
        assert code == 1 and err.startswith("mzc: error:") and message in err and "Traceback" not in err, err
        assert not (tmp_path / "bad.mzc").exists()
    code, _, err = run_cli(["decode", str(src.with_suffix(".mzc")), "-o", str(tmp_path / "z.tif"), "--scale", "0"])
    assert code == 1 and "--scale" in err and "Traceback" not in err
