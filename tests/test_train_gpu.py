"""tools/train_gpu.py, the one-run GPU training script, exercised on the CPU with a few steps: it starts from the
shipped models, writes a checkpoint per family, and resumes from them on a second run."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import tifffile

pytest.importorskip("torch")

from mzc.codecs.neural.modelfile import read
from tests.conftest import ROOT


def test_gpu_script_trains_every_family_and_resumes(tmp_path):
    data = tmp_path / "corpus"
    data.mkdir()
    rng = np.random.default_rng(0)
    for k in range(2):
        tifffile.imwrite(data / f"p{k}.tif", rng.poisson(200, (96, 96)).astype(np.uint16))
    out = tmp_path / "out"
    cmd = [sys.executable, str(ROOT / "tools" / "train_gpu.py"), "--out", str(out), "--device", "cpu",
           "--iterations", "2", "--minutes", "10", "--data", str(data), "--patch", "64", "--batch", "2",
           "--families", "mbt2018-mean-vr,bmshj2018-factorized-vr"]
    first = subprocess.run(cmd, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr[-2000:]
    for family in ("mbt2018-mean-vr", "bmshj2018-factorized-vr"):
        blob = read(str(out / f"{family}.pt"))
        assert blob["arch"] == family and blob["iterations"] == 2 and blob["inherited"]["iterations"] > 0
        assert blob["recipe"]["patch"] == 64 and blob["history"]
    again = subprocess.run(cmd[:-2] + ["--families", "mbt2018-mean-vr"], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-2000:]
    assert read(str(out / "mbt2018-mean-vr.pt"))["iterations"] == 4


def test_a_family_not_shipped_yet_starts_from_scratch(tmp_path):
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        from train_gpu import start_of
    finally:
        sys.path.pop(0)
    assert start_of("no-such-family-vr", str(tmp_path)) == {"arch": "no-such-family-vr"}
    (tmp_path / "mbt2018-mean-vr.pt").write_bytes(b"")
    assert start_of("mbt2018-mean-vr", str(tmp_path)) == {"resume": str(tmp_path / "mbt2018-mean-vr.pt")}
