"""gzip/zstd habits (issue 21): stdin decode, -k, -T 0, -r, suffixes that round-trip, one line per file (-v for the
table), progress callbacks for decode/verify/eval, help text, piped `mzc models`."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner

import mzc
from mzc.cli import cli


def run(args, input=None, cwd=None):
    proc = subprocess.run([sys.executable, "-m", "mzc", *args], input=input, capture_output=True, cwd=cwd)
    return proc.returncode, proc.stdout, proc.stderr.decode()


@pytest.fixture
def folder(tmp_path, nuclei_path, ome_path):
    """A folder tree of TIFFs with every suffix: a.tif, b.ome.tif, deeper/c.tiff."""
    shutil.copy(nuclei_path, tmp_path / "a.tif")
    shutil.copy(ome_path, tmp_path / "b.ome.tif")
    (tmp_path / "deeper").mkdir()
    shutil.copy(nuclei_path, tmp_path / "deeper" / "c.tiff")
    return tmp_path


def test_encode_to_stdout_piped_into_decode_from_stdin(nuclei_path):
    code, encoded, err = run(["encode", "-c", str(nuclei_path)])
    assert code == 0, err
    code, decoded, err = run(["decode", "-", "-c"], input=encoded)
    assert code == 0, err
    np.testing.assert_array_equal(tifffile.imread(__import__("io").BytesIO(decoded)), tifffile.imread(nuclei_path))
    code, out, err = run(["decode", "-"], input=b"not an mzc file at all")
    assert code == 1 and err.startswith("mzc: error: -:") and "Traceback" not in err and out == b""


def test_recursive_suffixes_round_trip_and_keep(folder):
    code, _, err = run(["encode", "-r", "-k", "-T", "0", str(folder)])
    assert code == 0, err
    assert sorted(p.name for p in folder.rglob("*.mzc")) == ["a.mzc", "b.mzc", "c.mzc"]
    assert len(err.strip().splitlines()) == 3  # one line per file
    originals = {p: tifffile.imread(p) for p in folder.rglob("*.tif*")}
    for p in originals:
        p.unlink()
    code, _, err = run(["decode", "-r", "-k", "-T", "0", str(folder)])
    assert code == 0, err
    for p, data in originals.items():  # x.ome.tif -> x.mzc -> x.ome.tif, y.tiff -> y.tiff
        assert p.exists(), f"{p.name} was not restored under its own suffix"
        np.testing.assert_array_equal(tifffile.imread(p), data)
    assert len(list(folder.rglob("*.mzc"))) == 3  # decode keeps its inputs


def test_a_folder_without_r_is_skipped_with_a_warning(folder):
    code, _, err = run(["encode", str(folder)])
    assert code == 2 and "is a directory -- ignored (use -r)" in err and not list(folder.rglob("*.mzc"))
    code, _, err = run(["encode", "-k", "--rm", str(folder / "a.tif")])
    assert code == 1 and err.startswith("mzc: error:") and "contradict" in err


def test_default_report_is_one_line_and_verbose_is_the_table(folder):
    code, _, err = run(["encode", str(folder / "a.tif")])
    assert code == 0
    [line] = err.strip().splitlines()
    assert line.startswith(f"{folder / 'a.tif'} -> {folder / 'a.mzc'}: ") and "x, lossless, " in line
    assert re.search(r", [0-9.]+ MB/s(, [0-9.]+ s)?$", line), line  # a slow first call also says its seconds
    code, _, err = run(["encode", "-f", "--max-error", "2", "-v", str(folder / "a.tif")])
    assert code == 0 and "max_abs_error" in err and "bytes_out" in err and len(err.strip().splitlines()) > 10
    code, _, err = run(["encode", "-f", "--max-error", "2", str(folder / "a.tif")])
    assert "PSNR" in err and " dB, " in err
    code, _, err = run(["encode", "-f", "--quiet", str(folder / "a.tif")])
    assert code == 0 and err == ""


def test_threads_zero_means_all_cores(folder):
    res = CliRunner().invoke(cli, ["encode", "-T", "0", str(folder / "a.tif")])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(cli, ["decode", "-T", "0", "-f", str(folder / "a.mzc")])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(cli, ["encode", "-T", "-1", str(folder / "a.tif")])
    assert res.exit_code != 0


def test_help_texts_have_no_escaped_percent_and_document_the_new_options():
    for command in ("encode", "decode", "verify", "eval"):
        res = CliRunner().invoke(cli, [command, "--help"], terminal_width=200)
        assert res.exit_code == 0 and "%%" not in res.output
    encode_help = CliRunner().invoke(cli, ["encode", "--help"], terminal_width=200).output
    for option in ("-k, --keep", "-r, --recursive", "-v, --verbose", "0: all cores"):
        assert option in encode_help
    decode_help = CliRunner().invoke(cli, ["decode", "--help"], terminal_width=200).output
    assert "--ngff" in decode_help and "-r, --recursive" in decode_help


def test_piped_models_lists_whole_names():
    pytest.importorskip("torch", reason="the learned models need the [learned] extra")
    code, out, err = run(["models"])
    from mzc.codecs.neural import zoo
    text = out.decode()
    for meta in zoo.manifest()["models"]:
        assert meta["name"] in text, f"{meta['name']} cut in a pipe"
    assert "…" not in text


def test_progress_callbacks_for_decode_verify_and_eval(tmp_path, nuclei_path, ome_path):
    out = tmp_path / "s.mzc"
    mzc.encode(str(ome_path), str(out))
    calls = []
    mzc.decode(str(out), str(tmp_path / "s.tif"), progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (16, 16) and len(calls) == 16  # one per page (Z x C)
    calls.clear()
    from mzc.api import verify
    assert verify(str(out), progress=lambda done, total: calls.append((done, total)))["ok"]
    assert calls[-1] == (16, 16)
    from mzc.analysis.evaluate import evaluate
    calls.clear()
    n = tmp_path / "n.mzc"
    mzc.encode(str(nuclei_path), str(n), max_error=2)
    evaluate(str(nuclei_path), str(n), progress=lambda done, total: calls.append((done, total)))
    assert calls and calls[-1] == (2, 2)  # the original's plane and the decoded one, segmented
