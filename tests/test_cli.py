"""The command line as users script it: gzip manners, exit codes, JSON contract, errors without tracebacks."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner

ENCODE_KEYS = {"input", "output", "codec", "shape", "dtype", "axes", "bytes_in", "bytes_out", "ratio", "bpp", "psnr_db",
               "psnr_dtype_db", "ssim", "max_abs_error", "pearson_r", "encode_seconds"}


def run(args, input=None):
    """Run through main() as the console script does; returns (exit code, stdout bytes, stderr text)."""
    proc = subprocess.run([sys.executable, "-m", "mzc", *args], input=input, capture_output=True)
    return proc.returncode, proc.stdout, proc.stderr.decode()


@pytest.fixture
def sample(tmp_path, nuclei_path):
    path = tmp_path / "nuclei.tif"
    shutil.copy(nuclei_path, path)
    return path


def test_encode_decode_default_names_and_json(sample):
    code, out, err = run(["encode", "--json", str(sample)])
    assert code == 0, err
    rep = json.loads(out)
    assert ENCODE_KEYS <= rep.keys()
    mzc_path = sample.with_suffix(".mzc")
    assert rep["bytes_out"] == mzc_path.stat().st_size and sample.exists()
    os.rename(sample, sample.with_name("orig.tif"))
    code, out, err = run(["decode", str(mzc_path)])
    assert code == 0, err
    np.testing.assert_array_equal(tifffile.imread(sample), tifffile.imread(sample.with_name("orig.tif")))


def test_never_overwrites_without_force(sample):
    assert run(["encode", str(sample)])[0] == 0
    mzc_path = sample.with_suffix(".mzc")
    before = mzc_path.read_bytes()
    code, _, err = run(["encode", "-q", "20x", "--codec", "j2k", str(sample)])
    assert code == 2 and "already exists" in err and mzc_path.read_bytes() == before
    code, _, err = run(["encode", "-f", "-q", "20x", "--codec", "j2k", str(sample)])
    assert code == 0 and mzc_path.read_bytes() != before


def test_rm_removes_input_only_after_verified_write(sample):
    code, _, err = run(["encode", "--rm", str(sample)])
    assert code == 0, err
    assert not sample.exists() and sample.with_suffix(".mzc").exists()


def test_stdin_to_stdout_pipeline(sample, tmp_path):
    code, out, err = run(["encode", "-", "--quiet"], input=sample.read_bytes())
    assert code == 0, err
    assert out[:8] == b"\x89MZC\r\n\x1a\n"
    (tmp_path / "p.mzc").write_bytes(out)
    code, tif, err = run(["decode", "-c", str(tmp_path / "p.mzc")])
    assert code == 0, err
    (tmp_path / "p.tif").write_bytes(tif)
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "p.tif"), tifffile.imread(sample))


def test_refuses_binary_to_terminal(sample):
    # a pseudo-terminal on stdout: mzc must refuse and write nothing
    import pty
    pid, fd = pty.fork()
    if pid == 0:  # child: stdout is the pty
        os.execv(sys.executable, [sys.executable, "-m", "mzc", "encode", "-c", str(sample)])
    output = b""
    try:
        while chunk := os.read(fd, 1024):
            output += chunk
    except OSError:
        pass
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 1
    assert b"terminal" in output and b"\x89MZC" not in output


def test_many_inputs_one_failure_exit_1_others_done(sample, tmp_path):
    other = tmp_path / "other.tif"
    shutil.copy(sample, other)
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"not a tiff at all")
    code, _, err = run(["encode", "-T", "2", str(sample), str(bad), str(other)])
    assert code == 1
    assert sample.with_suffix(".mzc").exists() and other.with_suffix(".mzc").exists()
    assert not bad.with_suffix(".mzc").exists()
    assert err.count("mzc: error:") == 1 and "Traceback" not in err


@pytest.mark.parametrize("args,message", [
    (["encode", "-q", "banana"], "expected a ratio"),
    (["encode", "--codec", "nosuch", "-q", "10x"], "unknown codec"),
    (["encode", "--lossless", "-q", "10x"], "cannot be combined"),
    (["encode", "--chunk", "1,2,x"], "--chunk"),
    (["encode", "--bogus-flag"], "no such option"),
    (["encode", "--codec", "nearlossless"], "needs --max-error"),
    (["encode", "--max-error", "-1"], ">= 0"),
])
def test_bad_options_one_line_error(sample, args, message):
    code, out, err = run(args + [str(sample)] if "--bogus-flag" not in args else args)
    assert code == 1 and message.lower() in err.lower() and "Traceback" not in err
    assert not sample.with_suffix(".mzc").exists()


def test_corrupt_mzc_rejected_by_decode_and_verify(sample, tmp_path):
    run(["encode", str(sample)])
    path = sample.with_suffix(".mzc")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))
    code, _, err = run(["decode", str(path), "-o", str(tmp_path / "o.tif")])
    assert code == 1 and "checksum" in err and not (tmp_path / "o.tif").exists()
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".mzc-")] == []
    code, out, err = run(["verify", "--json", str(path)])
    assert code == 1 and json.loads(out)["ok"] is False


def test_truncated_mzc_rejected(sample):
    run(["encode", str(sample)])
    path = sample.with_suffix(".mzc")
    path.write_bytes(path.read_bytes()[:-40])
    code, _, err = run(["info", str(path)])
    assert code == 1 and "truncated" in err


def test_info_and_verify_against(sample):
    run(["encode", "-q", "30x", "--codec", "sperr", str(sample)])
    path = sample.with_suffix(".mzc")
    code, out, _ = run(["info", "--json", str(path)])
    info = json.loads(out)
    assert code == 0 and info["codec"]["id"] == "sperr" and info["report"]["ratio"] == pytest.approx(30, rel=0.1)
    code, out, _ = run(["verify", "--json", "--against", str(sample), str(path)])
    rep = json.loads(out)
    assert code == 0 and rep["ok"] and rep["chunks_checked"] == 1
    assert rep["psnr_db"] == pytest.approx(info["report"]["psnr_db"], abs=1e-3)


def test_decode_roi_to_npy(sample, tmp_path):
    run(["encode", str(sample)])
    code, _, err = run(["decode", "--roi", "10:50,20:90", "-o", str(tmp_path / "r.npy"), str(sample.with_suffix(".mzc"))])
    assert code == 0, err
    np.testing.assert_array_equal(np.load(tmp_path / "r.npy"), tifffile.imread(sample)[10:50, 20:90])
    code, _, err = run(["decode", "--roi", "10:50", "-o", str(tmp_path / "s.npy"), str(sample.with_suffix(".mzc"))])
    assert code == 1 and "--roi has 1 entries" in err


def test_decode_refuses_an_output_suffix_it_cannot_write(sample, tmp_path):
    run(["encode", str(sample)])
    mzc_file = str(sample.with_suffix(".mzc"))
    code, _, err = run(["decode", "-o", str(tmp_path / "r.png"), mzc_file])
    assert code == 1 and err.startswith("mzc: error:") and "not .png" in err and err.count("\n") == 1
    assert not (tmp_path / "r.png").exists()
    for name in ("r.ome.tif", "r.TIFF", "r"):  # the TIFF family, and a name without suffix, are TIFFs
        code, _, err = run(["decode", "-o", str(tmp_path / name), mzc_file])
        assert code == 0, err
        np.testing.assert_array_equal(tifffile.imread(tmp_path / name), tifffile.imread(sample))


def test_click_runner_help_lists_commands():
    from mzc.cli import cli
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for command in ("encode", "decode", "info", "verify"):
        assert command in result.output


def test_in_process_with_click_runner(sample, tmp_path):
    from mzc.cli import cli
    runner = CliRunner()
    result = runner.invoke(cli, ["encode", "--json", "-q", "40x", "--codec", "htj2k", str(sample)])
    assert result.exit_code == 0, result.output
    rep = json.loads(result.stdout)
    assert rep["codec"] == "htj2k" and abs(rep["ratio"] / 40 - 1) <= 0.10
    result = runner.invoke(cli, ["decode", "--json", str(sample.with_suffix(".mzc")), "-o", str(tmp_path / "b.tif")])
    assert result.exit_code == 0 and json.loads(result.stdout)["shape"] == list(tifffile.imread(sample).shape)
    result = runner.invoke(cli, ["info", str(tmp_path / "missing.mzc")])
    assert result.exit_code == 1


def test_long_names_stay_on_one_line_with_their_rate(sample, tmp_path):
    """A facility's log is parsed line by line: stderr that is a file must not wrap at 80 columns."""
    long = tmp_path / ("acquisition_2026-12-07_plate07_well_B04_position_0001_channel_DAPI_" + "z" * 40 + ".tif")
    shutil.copy(sample, long)
    code, _, err = run(["encode", "-q", "20x", str(long)])
    assert code == 0 and len(err.splitlines()) == 1 and "MB/s" in err and "PSNR" in err, err
    code, _, err = run(["decode", "-o", str(tmp_path / "back.tif"), str(long.with_suffix(".mzc"))])
    line = err.strip()
    assert code == 0 and "\n" not in line and "MB/s" in line and "(256, 256)" in line, err


def test_slow_rates_keep_their_digits():
    from mzc.cli.common import rate_text
    assert rate_text(10_000_000, 2.0) == ", 5.0 MB/s"
    assert rate_text(960_000, 80.0) == ", 0.012 MB/s, 80.0 s"  # an inr fit: never "0.0 MB/s"
    assert rate_text(0, 1.0) == "" and rate_text(5, 0.0) == ""


def test_lossless_json_reports_psnr_null_not_a_string(sample):
    code, out, err = run(["encode", "--json", str(sample)])
    rep = json.loads(out)
    assert code == 0 and rep["psnr_db"] is None and rep["psnr_dtype_db"] is None and rep["max_abs_error"] == 0
    _, out, _ = run(["info", "--json", str(sample.with_suffix(".mzc"))])
    assert json.loads(out)["report"]["psnr_db"] is None


def test_verify_against_a_different_image_of_the_same_shape_fails(sample, tmp_path):
    other = tmp_path / "other.tif"
    tifffile.imwrite(other, np.roll(tifffile.imread(sample), 7, axis=0))  # same shape, same data range
    run(["encode", "-q", "20x", "-o", str(tmp_path / "lossy.mzc"), str(sample)])
    run(["encode", "-o", str(tmp_path / "exact.mzc"), str(sample)])
    for name in ("lossy", "exact"):
        code, out, err = run(["verify", "--json", "--against", str(other), str(tmp_path / f"{name}.mzc")])
        assert code == 1 and not json.loads(out)["ok"] and "not its original" in err, (name, err)
        code, _, err = run(["verify", "--against", str(sample), str(tmp_path / f"{name}.mzc")])
        assert code == 0 and "OK" in err, (name, err)


def test_eval_quiet_prints_nothing_but_keeps_its_exit_status(sample, tmp_path):
    run(["encode", str(sample)])
    code, out, err = run(["eval", "--quiet", str(sample), str(sample.with_suffix(".mzc"))])
    assert code == 0 and err == "" and out == b""
    other = tmp_path / "other.tif"
    tifffile.imwrite(other, np.roll(tifffile.imread(sample), 40, axis=1))  # a "decoding" whose objects moved
    code, out, err = run(["eval", "--quiet", "--min-f1", "0.9", str(sample), str(other)])
    assert code == 1 and out == b"" and err.startswith("mzc: error: segmentation F1") and len(err.splitlines()) == 1


def test_install_hints_name_the_install_the_user_has():
    """A clone installed with -e gets its own folder in the hint, not PyPI's name (which is another package)."""
    from importlib import metadata

    from mzc.extras import install_hint
    direct = json.loads(metadata.distribution("mzc").read_text("direct_url.json") or "{}")
    hint = install_hint("learned")
    if direct.get("url", "").startswith("file://"):
        folder = direct["url"][len("file://"):]
        assert hint.startswith("pip install ") and hint.endswith(f"'{folder}[learned]'")
        assert ("-e " in hint) == bool(direct.get("dir_info", {}).get("editable"))
    else:
        assert hint == "pip install 'mzc[learned]'"
