"""Acquisition-style writing: frames appended one at a time; a crash leaves a file every reader refuses as truncated,
and `recover` keeps every complete frame."""
from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

import mzc
from mzc.bounds import noise_model as noise
from mzc.cli import cli
from mzc.errors import MzcError


def frames(n=5, shape=(2, 100, 130), seed=0):
    """n frames of Poisson counts over a fixed pattern, getting brighter (later frames exceed the first's range)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(200, 3000, shape).astype(np.float64)
    return [np.clip(rng.poisson(base * (1 + 0.1 * t)) + 100, 0, 65535).astype(np.uint16) for t in range(n)]


@pytest.mark.parametrize("options", [{}, {"max_error": 3}, {"noise": 1.0}, {"codec": "j2k", "quality": "45dB"}])
def test_frames_appended_make_a_valid_file(tmp_path, options):
    stack = frames()
    path = tmp_path / "run.mzc"
    with mzc.StackWriter(str(path), stack[0].shape, "uint16", "TCYX", chunks=(1, 64, 64), **options) as w:
        for f in stack:
            w.append(f)
    report = mzc.info(str(path))["report"]
    assert mzc.verify(str(path))["ok"]
    with mzc.open(str(path)) as mz:
        assert mz.shape == (5, 2, 100, 130) and mz.axes == "TCYX" and "growing" not in mz.header
        back = mz.read()
        codec = mz.header["codec"]
    data = np.stack(stack)
    if not options:
        np.testing.assert_array_equal(back, data)
    elif "max_error" in options:
        assert np.abs(back.astype(np.int64) - data).max() <= 3
    elif "noise" in options:
        model = noise.NoiseModel.from_dict(codec["bound"]["models"][0])
        assert np.all(np.abs(back.astype(np.float64) - data) <= model.sigma(data))
    assert report["bytes_out"] == path.stat().st_size and report["shape"] == [5, 2, 100, 130]
    assert report["max_abs_error"] == np.abs(back.astype(np.int64) - data).max()


def test_a_crash_leaves_a_truncated_file_that_recover_finishes(tmp_path):
    stack = frames(4, (80, 90))
    path = tmp_path / "crash.mzc"
    w = mzc.StackWriter(str(path), (80, 90), "uint16", "TYX", chunks=(40, 45))
    for f in stack:
        w.append(f)
    w._fh.flush()
    size = path.stat().st_size
    w._fh.close()  # the process dies: no close()
    with open(path, "ab") as fh:
        fh.write(b"\x00" * 7)  # and half a record of a 5th frame made it to disk
    with pytest.raises(MzcError, match="truncated"):
        mzc.open(str(path))
    # cut inside the last frame: the frame before it is the last complete one
    with open(path, "r+b") as fh:
        fh.truncate(size - 30)
    res = CliRunner().invoke(cli, ["recover", str(path), "--json"])
    assert res.exit_code == 0, res.output
    with mzc.open(str(path)) as mz:
        assert mz.shape == (3, 80, 90)
        np.testing.assert_array_equal(mz.read(), np.stack(stack[:3]))
    assert mzc.verify(str(path))["ok"]
    res = CliRunner().invoke(cli, ["recover", str(path)])
    assert res.exit_code == 1 and "complete" in res.output  # a finished file is left alone


def test_writer_refuses_a_wrong_frame_and_still_finishes(tmp_path):
    path = tmp_path / "w.mzc"
    stack = frames(2, (32, 32))
    with pytest.raises(MzcError, match="does not match"):
        with mzc.StackWriter(str(path), (32, 32), "uint16", "TYX") as w:
            w.append(stack[0])
            w.append(stack[1][:16])
    with mzc.open(str(path)) as mz:  # the frames before the error make a complete file
        np.testing.assert_array_equal(mz.read(), stack[0][None])


def test_recover_refuses_what_it_cannot_recover(tmp_path, nuclei_path):
    out = tmp_path / "n.mzc"
    mzc.encode(str(nuclei_path), str(out))
    data = out.read_bytes()
    out.write_bytes(data[:-40])
    with pytest.raises(MzcError, match="not written by the stack writer"):
        mzc.recover(str(out))
