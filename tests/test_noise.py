"""--noise K and --max-error E with every lossy codec: the bound holds on every pixel, proven on random data
(hypothesis), extremes and real stacks; the noise fit recovers a known model; bad input fails cleanly."""
from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import mzc
from mzc.bounds import noise_model as noise
from mzc.bounds.bound import Bound
from mzc.bounds.quantizer import BinTable, greedy_bins, noise_bins
from mzc.cli import cli
from mzc.codecs import from_config
from mzc.codecs.base import LibraryCodec
from mzc.codecs.bounded import Bounded
from mzc.codecs.noise import Noise
from mzc.codecs.registry import providing
from mzc.encoding.ratecontrol import prepared
from mzc.errors import MzcError
from mzc.stats import DataStats
from tests.conftest import real_file, write_tiff

CLASSIC = tuple(cls.id for cls in providing(LibraryCodec))  # the classic library codecs, as registered
FLUORESCENCE = ("nuclei2d_hoechst_u16.tif", "foci2d_h2ax_u16.tif", "multichannel_bbbc022_u16.tif")


def allowed(model: noise.NoiseModel, k: float, x: np.ndarray) -> np.ndarray:
    return k * model.sigma(x)


def synthetic_poisson_gaussian(a=2.0, read_sigma=5.0, offset=100.0, shape=(768, 768), seed=0):
    """Shot noise with gain a plus Gaussian read noise over a ramp: Var = a*x + (read_sigma^2 - a*offset)."""
    rng = np.random.default_rng(seed)
    signal = np.tile(np.linspace(100, 3000, shape[1]), (shape[0], 1))
    x = rng.poisson(signal / a) * a + rng.normal(0, read_sigma, shape) + offset
    return np.clip(np.round(x), 0, 65535).astype(np.uint16), (a, read_sigma ** 2 - a * offset)


def test_fit_recovers_a_known_poisson_gaussian_model():
    data, (a, b) = synthetic_poisson_gaussian()
    model = noise.fit([data], (0, 65535))
    assert model.a == pytest.approx(a, rel=0.05)
    assert model.variance(2000) == pytest.approx(a * 2000 + b, rel=0.05)
    assert model.gat_std == pytest.approx(1.0, abs=0.05)


def test_fit_on_real_fluorescence_is_signal_dependent():
    data = tifffile.imread(real_file("nuclei2d_hoechst_u16.tif"))
    model = noise.fit([data], (0, 65535))
    assert model.a > 0.05 and 0.9 < model.gat_std < 1.1
    # the stabilized residual of flat blocks has unit variance across the whole intensity range
    m, v = noise.block_stats(model.stabilize(data), (-1, 1e9))
    low, high = m < np.median(m), m >= np.median(m)
    for part in (low, high):
        assert 0.8 < np.sqrt(np.quantile(v[part], noise.LOW_QUANTILE) / noise.QUARTILE_BIAS) < 1.2


@settings(max_examples=200, deadline=None)
@given(lo=st.integers(0, 60000), span=st.integers(0, 5000), a=st.floats(0, 30), b=st.floats(-500, 500),
       k=st.floats(0, 4))
def test_greedy_bins_bound_every_value(lo, span, a, b, k):
    hi = min(lo + span, 65535)
    if a == 0 and b <= 0:
        b = 1.0
    model = noise.NoiseModel(a, b)
    table = noise_bins(model, k, lo, hi)
    x = np.arange(lo, hi + 1)
    assert np.all(np.abs(table.value(table.index(x)) - x) <= allowed(model, k, x))
    again = BinTable.from_bytes(table.to_bytes(), np.uint16)
    assert np.array_equal(again.starts, table.starts) and np.array_equal(again.values, table.values)


def test_range_ends_come_back_exactly():
    table = noise_bins(noise.NoiseModel(2.0, 10.0), 2.0, 100, 4095)
    assert table.value(table.index(np.array([100, 4095]))).tolist() == [100, 4095]


def test_greedy_bins_are_the_fewest_for_a_constant_bound():
    table = greedy_bins(0, 999, np.full(1000, 3))
    assert table.bins == 143 and np.all(np.diff(table.starts) == 7)  # ceil(1000 / 7) bins of width 2E + 1


def random_blocks(max_side=48):
    """uint8/uint16 arrays, any small shape (odd, 1-wide), with the dtype's limits mixed in."""
    def build(args):
        dtype, shape, seed, limits = args
        rng = np.random.default_rng(seed)
        top = np.iinfo(dtype).max
        data = rng.integers(0, top, shape, endpoint=True, dtype=np.int64)
        if limits:  # saturated pixels and zeros
            mask = rng.random(shape)
            data[mask < 0.1] = 0
            data[mask > 0.9] = top
        return data.astype(dtype)
    shapes = hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=max_side)
    return st.tuples(st.sampled_from([np.uint8, np.uint16]), shapes, st.integers(0, 2 ** 32 - 1),
                     st.booleans()).map(build)


def model_for(a, b):
    return noise.NoiseModel(a, b if a > 0 or b > 0 else 1.0)


@settings(max_examples=150, deadline=None)
@given(block=random_blocks(), a=st.floats(0, 20), b=st.floats(-200, 400), k=st.floats(0, 3),
       effort=st.sampled_from(["fast", "max"]))
def test_noise_codec_bound_holds_on_random_blocks(block, a, b, k, effort):
    model = model_for(a, b)
    lo, hi = int(block.min()), int(block.max())
    codec = Noise(bound=Bound.noise(k, [model], lo, hi).config(), effort=effort)
    body, params = codec.encode(block)
    back = from_config(codec.config()).decode(body, block.shape, block.dtype, params)
    assert back.dtype == block.dtype and back.shape == block.shape
    assert np.all(np.abs(back.astype(np.float64) - block) <= allowed(model, k, block))


@settings(max_examples=60, deadline=None)
@given(block=random_blocks(), base=st.sampled_from(CLASSIC), quality=st.floats(0, 1), error=st.integers(0, 300),
       k=st.floats(0, 3), a=st.floats(0, 20), b=st.floats(-200, 400), kind=st.sampled_from(["abs", "noise"]))
def test_every_classic_codec_bounded_on_random_blocks(block, base, quality, error, k, a, b, kind):
    lo, hi = int(block.min()), int(block.max())
    base_codec = from_config({"id": base})
    low, high = base_codec.knob_bounds
    knob = float(np.exp(np.log(low) + quality * (np.log(high) - np.log(low)))) if base_codec.knob_log \
        else low + quality * (high - low)
    model = model_for(a, b)
    bound = Bound.absolute(error, lo, hi) if kind == "abs" else Bound.noise(k, [model], lo, hi)
    codec = Bounded(base=base_codec.with_knob(knob).config(), bound=bound.config())
    body, params = codec.encode(block)
    back = from_config(codec.config()).decode(body, block.shape, block.dtype, params)
    limit = error if kind == "abs" else allowed(model, k, block)
    assert np.all(np.abs(back.astype(np.float64) - block) <= limit)


@pytest.fixture(scope="module")
def real_planes():
    """One plane of each real 16-bit fluorescence file, with its fitted noise model."""
    planes = []
    for name in FLUORESCENCE:
        data = tifffile.imread(real_file(name))
        plane = data[0] if data.ndim == 3 else data
        planes.append((plane, noise.fit([plane], (0, 65535))))
    return planes


@settings(max_examples=40, deadline=None)
@given(which=st.integers(0, len(FLUORESCENCE) - 1), y=st.integers(0, 300), x=st.integers(0, 300),
       h=st.integers(1, 90), w=st.integers(1, 90), base=st.sampled_from(CLASSIC), quality=st.floats(0, 1),
       error=st.sampled_from([0, 1, 4, 16, 100]), k=st.sampled_from([0.5, 1.0, 2.0, 3.0]),
       kind=st.sampled_from(["abs", "noise"]))
def test_every_classic_codec_bounded_on_real_crops(real_planes, which, y, x, h, w, base, quality, error, k, kind):
    plane, model = real_planes[which]
    block = plane[y:y + h, x:x + w].copy()
    block.reshape(-1)[:: 7] = 4095  # saturated pixels (12-bit camera) inside the crop
    lo, hi = int(block.min()), int(block.max())
    base_codec = prepared(from_config({"id": base}), DataStats(float(lo), float(hi), None))
    low, high = base_codec.knob_bounds
    knob = float(np.exp(np.log(low) + quality * (np.log(high) - np.log(low)))) if base_codec.knob_log \
        else low + quality * (high - low)
    bound = Bound.absolute(error, lo, hi) if kind == "abs" else Bound.noise(k, [model], lo, hi)
    codec = Bounded(base=base_codec.with_knob(knob).config(), bound=bound.config())
    body, params = codec.encode(block)
    back = from_config(codec.config()).decode(body, block.shape, block.dtype, params)
    assert np.all(np.abs(back.astype(np.float64) - block) <= bound.allowed(block, 0))
    assert np.array_equal(back[block == 4095], block[block == 4095])  # saturation survives


@pytest.fixture(scope="module")
def fluorescence_crop():
    return tifffile.imread(real_file("nuclei2d_hoechst_u16.tif"))[200:456, 300:556]


@settings(max_examples=6, deadline=None)
@given(error=st.sampled_from([0, 1, 4, 16]), dy=st.integers(0, 40), dx=st.integers(0, 40))
def test_learned_codec_bounded_on_real_data(fluorescence_crop, error, dy, dx):
    pytest.importorskip("compressai")
    block = fluorescence_crop[dy:dy + 129, dx:dx + 131].copy()  # odd shape: the learned codec pads
    block[0, :5] = 65535  # a saturated pixel far outside the data
    block[-1, -5:] = 0
    base = from_config({"id": "learned"}).prepare(DataStats(float(fluorescence_crop.min()),
                                                            float(fluorescence_crop.max()), None))
    base = base.with_knob(float(error % 8)).bind()  # a rate parameter in 0..7
    codec = Bounded(base=base.config(), bound=Bound.absolute(error, 0, 65535).config())
    body, params = codec.encode(block)
    back = codec.decode(body, block.shape, block.dtype, params)
    assert np.abs(back.astype(np.int64) - block).max() <= error


@pytest.fixture(scope="module")
def fast_fields():
    """Short fits: the property is the bound, which holds whatever the base's quality."""
    pytest.importorskip("torch")
    from mzc.codecs.neural import field_fit
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(field_fit.DEFAULT_STEPS, "grid", 40)
        yield


@settings(max_examples=8, deadline=None)
@given(cid=st.sampled_from(["inr", "hybrid"]), kind=st.sampled_from(["abs", "noise"]),
       error=st.sampled_from([0, 4, 16]), k=st.sampled_from([0.5, 2.0]), y=st.integers(0, 150),
       x=st.integers(0, 150), bpe=st.sampled_from([0.1, 0.3]))  # hybrid needs room for a J2K base (~240 B)
def test_inr_and_hybrid_bounded_on_real_data(fluorescence_crop, fast_fields, cid, kind, error, k, y, x, bpe):
    block = fluorescence_crop[y:y + 97, x:x + 101].copy()
    block[5, 5] = 65535
    model = noise.fit([fluorescence_crop], (0, 65535))
    bound = Bound.absolute(error, 0, 65535) if kind == "abs" else Bound.noise(k, [model], 0, 65535)
    base = from_config({"id": cid}).with_budget(bpe)
    codec = Bounded(base=base.config(), bound=bound.config())
    body, params = codec.encode(block)
    back = from_config(codec.config()).decode(body, block.shape, block.dtype, params)
    assert np.all(np.abs(back.astype(np.float64) - block) <= bound.allowed(block, 0))
    assert back[5, 5] == 65535


def test_base_that_decodes_differently_is_refused(fluorescence_crop):
    codec = Bounded(base={"id": "j2k", "knob": 40.0}, bound=Bound.absolute(2, 0, 65535).config())
    body, params = codec.encode(fluorescence_crop)
    with pytest.raises(MzcError, match="cannot be guaranteed"):
        codec.decode(body, fluorescence_crop.shape, fluorescence_crop.dtype, dict(params, bc=params["bc"] ^ 1))


@pytest.mark.parametrize("name", FLUORESCENCE)
@pytest.mark.parametrize("k", [0.5, 1.0, 2.0])
def test_noise_mode_on_real_files_bounds_every_pixel(tmp_path, name, k):
    path = real_file(name)
    out = tmp_path / "x.mzc"
    rep = mzc.encode(str(path), str(out), noise=k)
    original = tifffile.imread(path)
    with mzc.open(str(out)) as mz:
        back = mz.read()
        models = [noise.NoiseModel.from_dict(m) for m in mz.header["noise"]["models"]]
    channels = original if name.startswith("multichannel") else original[None]
    decoded = back if name.startswith("multichannel") else back[None]
    assert len(models) == len(channels)
    worst = 0.0
    for model, x, y in zip(models, channels, decoded):
        err = np.abs(y.astype(np.float64) - x)
        assert np.all(err <= k * model.sigma(x))
        worst = max(worst, float(np.max(np.where(err > 0, err / model.sigma(x), 0))))
    assert rep["max_error_sigma"] == pytest.approx(worst, abs=1e-3) and rep["max_error_sigma"] <= k
    # the point of the mode: smaller than JPEG-LS near-lossless held to the same guarantee (its one NEAR must
    # respect the smallest sigma in the image)
    near = int(np.floor(k * min(m.sigma(x.min()) for m, x in zip(models, channels))))
    jls = mzc.encode(str(path), str(tmp_path / "nl.mzc"), max_error=near)
    assert rep["ratio"] > jls["ratio"]


def test_noise_on_a_stack_with_planes_of_zeros_and_saturation(tmp_path):
    data, _ = synthetic_poisson_gaussian(shape=(96, 97))
    stack = np.stack([data, np.zeros_like(data), np.full_like(data, 65535), data[::-1]])
    path = write_tiff(tmp_path / "s.tif", stack, "ZYX")
    rep = mzc.encode(str(path), str(tmp_path / "s.mzc"), noise=1.0)
    with mzc.open(str(tmp_path / "s.mzc")) as mz:
        back = mz.read()
        model = noise.NoiseModel.from_dict(mz.header["noise"]["models"][0])
    assert np.all(np.abs(back.astype(np.float64) - stack) <= model.sigma(stack))
    assert np.array_equal(back[1:3], stack[1:3]) and rep["max_error_sigma"] <= 1.0


def test_given_model_is_stored_and_used(tmp_path, nuclei_path):
    out = tmp_path / "g.mzc"
    rep = mzc.encode(str(nuclei_path), str(out), noise=2.0, noise_model="3.5,20")
    model = noise.NoiseModel(3.5, 20)
    with mzc.open(str(out)) as mz:
        back = mz.read()
        assert mz.header["noise"]["models"] == [{"a": 3.5, "b": 20.0, "source": "given"}]
    original = tifffile.imread(nuclei_path)
    assert np.all(np.abs(back.astype(np.float64) - original) <= 2.0 * model.sigma(original))
    assert 1.0 < rep["max_error_sigma"] <= 2.0


@pytest.mark.parametrize("codec", ["j2k", "jxl", "sperr"])
@pytest.mark.parametrize("bound", [{"max_error": 4}, {"noise": 1.0}])
def test_named_codec_with_bound_end_to_end(tmp_path, codec, bound):
    path = real_file("multichannel_bbbc022_u16.tif")
    out = tmp_path / "b.mzc"
    rep = mzc.encode(str(path), str(out), codec=codec, **bound)
    original = tifffile.imread(path)
    with mzc.open(str(out)) as mz:
        back = mz.read()
        assert mz.header["codec"]["id"] == "bounded" and mz.header["codec"]["base"]["id"] == codec
        models = mz.header.get("noise", {}).get("models")
    if "max_error" in bound:
        assert np.abs(back.astype(np.int64) - original).max() <= 4 and rep["max_abs_error"] <= 4
    else:
        for c, m in enumerate(models):
            sigma = noise.NoiseModel.from_dict(m).sigma(original[c])
            assert np.all(np.abs(back[c].astype(np.float64) - original[c]) <= sigma)
    assert rep["ratio"] > mzc.encode(str(path), str(tmp_path / "l.mzc"))["ratio"]


def test_base_target_is_honoured_and_bound_still_holds(tmp_path, nuclei_path):
    out = tmp_path / "q.mzc"
    rep = mzc.encode(str(nuclei_path), str(out), codec="j2k", quality="20x", max_error=8)
    with mzc.open(str(out)) as mz:
        back = mz.read()
    assert np.abs(back.astype(np.int64) - tifffile.imread(nuclei_path)).max() <= 8
    assert rep["target"] == "20x" and rep["ratio"] < 20  # -q sized the base; the residual comes on top


def run(args):
    return CliRunner().invoke(cli, args)


def test_cli_noise_and_info(tmp_path, nuclei_path):
    out = tmp_path / "n.mzc"
    res = run(["encode", str(nuclei_path), "-o", str(out), "--noise", "1", "--json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.output)
    assert rep["bound"] == "|error| <= 1 sigma(x)" and 0 < rep["max_error_sigma"] <= 1
    res = run(["info", str(out), "--json"])
    info = json.loads(res.output)
    assert info["noise"]["models"][0]["a"] > 0 and info["report"]["max_error_sigma"] == rep["max_error_sigma"]
    assert "tables" not in json.dumps(info["codec"])
    res = run(["info", str(out)])
    assert "max_error_sigma" in res.output and "sigma(x)" in res.output
    res = run(["verify", str(out), "--against", str(nuclei_path), "--json"])
    checked = json.loads(res.output)
    assert res.exit_code == 0 and checked["bound_held"] and checked["max_error_sigma"] == rep["max_error_sigma"]


def test_verify_against_a_different_original_reports_the_bound_broken(tmp_path, nuclei_path):
    out = tmp_path / "n.mzc"
    mzc.encode(str(nuclei_path), str(out), codec="j2k", max_error=2)
    other = tifffile.imread(nuclei_path).copy()
    other[10, 10] += 50 if other[10, 10] < 60000 else -50
    path = write_tiff(tmp_path / "other.tif", other, "YX")
    result = mzc.verify(str(out), str(path))
    assert not result["bound_held"] and not result["ok"] and "bound" in result["errors"][-1]


@pytest.mark.parametrize("args, message", [
    (["--noise", "-1"], "--noise K must be"),
    (["--noise", "1", "--noise-model", "abc"], "--noise-model takes"),
    (["--noise", "1", "--noise-model", "-1,5"], "is not a variance"),
    (["--noise-model", "1,2"], "goes with --noise"),
    (["--noise", "1", "--max-error", "3"], "alternatives"),
    (["--noise", "1", "--lossless"], "cannot be combined"),
    (["--noise", "1", "-q", "50x"], "fixes the quality"),
    (["--max-error", "2", "--codec", "inr:siren"], "not bit-identical"),
    (["--codec", "noise"], "needs --noise"),
])
def test_cli_bad_bound_options(tmp_path, nuclei_path, args, message):
    out = tmp_path / "bad.mzc"
    res = run(["encode", str(nuclei_path), "-o", str(out), *args])
    assert res.exit_code == 1 and message in res.output and "Traceback" not in res.output
    assert not out.exists()


def test_noise_refuses_float_data_and_channel_spanning_chunks(tmp_path):
    path = write_tiff(tmp_path / "f.tif", np.random.default_rng(0).random((32, 32), np.float32), "YX")
    res = run(["encode", str(path), "-o", str(tmp_path / "f.mzc"), "--noise", "1"])
    assert res.exit_code == 1 and "uint8/uint16" in res.output
    data, _ = synthetic_poisson_gaussian(shape=(64, 64))
    path = write_tiff(tmp_path / "c.tif", np.stack([data, data]), "CYX")
    res = run(["encode", str(path), "-o", str(tmp_path / "c.mzc"), "--noise", "1", "--chunk", "2,64,64"])
    assert res.exit_code == 1 and "one channel" in res.output


def test_corrupt_bin_table_is_rejected():
    model = noise.NoiseModel(1.0, 4.0)
    bound = Bound.noise(1.0, [model], 0, 1000).config()
    codec = Noise(bound=bound)
    block = np.arange(1000, dtype=np.uint16).reshape(20, 50)
    body, params = codec.encode(block)
    import zstandard
    raw = bytearray(zstandard.ZstdDecompressor().decompress(bound["tables"][0]))
    raw[16 + 8 * 3] ^= 0xFF  # a bin start goes backwards
    bad = dict(bound, tables=[zstandard.ZstdCompressor().compress(bytes(raw))])
    with pytest.raises(MzcError, match="bin table"):
        Noise(bound=bad).decode(body, block.shape, block.dtype, params)
    with pytest.raises(MzcError, match="index"):
        Noise(bound=bound).decode(body, block.shape, block.dtype, dict(params, o=10_000))


def test_large_constant_bound_takes_near_lossless_residual_and_holds(fluorescence_crop):
    codec = Bounded(base={"id": "j2k", "knob": 30.0}, bound=Bound.absolute(16, 0, 65535).config())
    body, params = codec.encode(fluorescence_crop)
    back = from_config(codec.config()).decode(body, fluorescence_crop.shape, fluorescence_crop.dtype, params)
    assert params["b"] == "jpegls-near"
    assert np.abs(back.astype(np.int64) - fluorescence_crop).max() <= 16
    noise_codec = Bounded(base={"id": "j2k", "knob": 30.0},
                          bound=Bound.noise(1.0, [noise.NoiseModel(1.0, 4.0)], 0, 65535).config())
    with pytest.raises(MzcError, match="noise bound"):
        noise_codec.decode(body, fluorescence_crop.shape, fluorescence_crop.dtype, params)
