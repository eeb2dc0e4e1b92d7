"""No output is lost or clobbered (issue 26, item 1): outputs are planned for the whole run before any work."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import tifffile

import mzc


def run(args, cwd=None):
    proc = subprocess.run([sys.executable, "-m", "mzc", *args], capture_output=True, cwd=cwd)
    return proc.returncode, proc.stdout, proc.stderr.decode()


def tiny(path, value: int = 0, **kwargs):
    data = (np.random.default_rng(value).integers(0, 4000, (64, 64)) + value).astype(np.uint16)
    tifffile.imwrite(path, data, **kwargs)
    return data


@pytest.mark.parametrize("threads", ["1", "2"])
def test_two_inputs_for_one_output_refuse_the_run_naming_both(tmp_path, threads):
    col = tmp_path / "col"
    col.mkdir()
    tiny(col / "x.tif", 1)
    tiny(col / "x.ome.tif", 2, ome=True)
    for args in (["-r", str(col)], [str(col / "x.tif"), str(col / "x.ome.tif"), "-o", str(tmp_path)]):
        code, _, err = run(["encode", "-T", threads, *args])
        assert code == 1 and "x.tif" in err and "x.ome.tif" in err and "both" in err, err
        assert err.startswith("mzc: error: ") and "Traceback" not in err
        assert not list(tmp_path.rglob("*.mzc")) and not list(tmp_path.rglob(".mzc-*"))


def test_recursive_with_output_folder_mirrors_the_tree(tmp_path):
    src, out = tmp_path / "dup2", tmp_path / "out3"
    (src / "s").mkdir(parents=True)
    out.mkdir()
    top, deep = tiny(src / "a.tif", 1), tiny(src / "s" / "a.tif", 2)
    code, _, err = run(["encode", "-T", "2", "-r", str(src), "-o", str(out)])
    assert code == 0, err
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.mzc")) == ["a.mzc", "s/a.mzc"]
    np.testing.assert_array_equal(mzc.imread(str(out / "a.mzc")), top)
    np.testing.assert_array_equal(mzc.imread(str(out / "s" / "a.mzc")), deep)
    back = tmp_path / "back"
    back.mkdir()
    code, _, err = run(["decode", "-r", str(out), "-o", str(back)])
    assert code == 0, err
    np.testing.assert_array_equal(tifffile.imread(back / "s" / "a.tif"), deep)


def test_a_non_regular_output_is_refused_even_with_force(tmp_path):
    tiny(tmp_path / "n.tif")
    fifo = tmp_path / "f.mzc"
    os.mkfifo(fifo)
    sock_path = tmp_path / "s.mzc"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(sock_path))
    try:
        for target, kind in ((fifo, "FIFO"), (sock_path, "socket"), ("/dev/null", "character device")):
            code, _, err = run(["encode", "-f", str(tmp_path / "n.tif"), "-o", str(target)])
            assert code == 1 and kind in err and "-c" in err, err
        assert fifo.is_fifo() and sock_path.is_socket() and os.path.exists("/dev/null")
        assert not list(tmp_path.glob(".mzc-*"))
        with pytest.raises(mzc.MzcError, match="not a regular file"):  # the API's last guard
            mzc.encode(str(tmp_path / "n.tif"), str(fifo))
    finally:
        sock.close()


def test_stdout_takes_one_input(tmp_path):
    tiny(tmp_path / "a.tif", 1)
    tiny(tmp_path / "b.tif", 2)
    code, out, err = run(["encode", "-c", str(tmp_path / "a.tif"), str(tmp_path / "b.tif")])
    assert code == 1 and out == b"" and "-c writes one stream" in err
    mzc.encode(str(tmp_path / "a.tif"), str(tmp_path / "a.mzc"))
    mzc.encode(str(tmp_path / "b.tif"), str(tmp_path / "b.mzc"))
    code, out, err = run(["decode", "-c", str(tmp_path / "a.mzc"), str(tmp_path / "b.mzc")])
    assert code == 1 and out == b"" and "-c writes one stream" in err


def test_an_output_that_is_another_input_is_refused(tmp_path):
    tiny(tmp_path / "b", 1)  # a TIFF without a suffix: its output is b.mzc, here another input
    kept = tiny(tmp_path / "b.mzc", 2)
    code, _, err = run(["encode", "-f", str(tmp_path / "b"), str(tmp_path / "b.mzc")])
    assert code == 1 and "another input" in err, err
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "b.mzc"), kept)
    assert not (tmp_path / "b.mzc.mzc").exists()


def test_an_unwritable_output_folder_is_named_in_the_error(tmp_path, monkeypatch):
    """`-o ro/b.mzc` in a folder the user cannot write named the input only ("a.tif: Permission denied")."""
    import tempfile

    from click.testing import CliRunner

    from mzc.cli import cli
    src = tmp_path / "a.tif"
    tifffile.imwrite(src, np.arange(64 * 64, dtype=np.uint16).reshape(64, 64))
    (tmp_path / "ro").mkdir()

    def refused(*args, **kwargs):  # what a read-only folder does to a user without override rights (CI runs as root)
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refused)
    result = CliRunner().invoke(cli, ["encode", str(src), "-o", str(tmp_path / "ro" / "b.mzc")])
    assert result.exit_code == 1
    assert f"cannot write {tmp_path / 'ro' / 'b.mzc'}: Permission denied" in result.output
    assert src.exists() and not list((tmp_path / "ro").iterdir())
