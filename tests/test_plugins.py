"""Third-party codecs: docs/plugins.md's example installed as a package (its dist-info and entry point, as pip
writes them) and used through the command line; the registry is the only place that learns of it."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import tifffile

from mzc.metrics import psnr
from tests.conftest import ROOT


def plugin_source() -> str:
    text = (ROOT / "docs" / "plugins.md").read_text()
    return re.search(r"```python\n(.*?)```", text, re.S).group(1)


def install(site, broken: bool = False) -> str:
    """The plug-in package and its dist-info in `site` (what `pip install --target site` leaves)."""
    package = site / "mzc_roundq"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(plugin_source())
    info = site / "mzc_roundq-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mzc-roundq\nVersion: 0.1\n")
    points = "[mzc.codecs]\nroundq = mzc_roundq:RoundQ\n"
    if broken:  # a second plug-in whose module is missing must not stop the first
        points += "ghost = mzc_ghost_missing:Ghost\n"
    (info / "entry_points.txt").write_text(points)
    (info / "RECORD").write_text("")
    return str(site)


def mzc_cli(args, site=None, cwd=None):
    env = dict(os.environ)
    if site:
        env["PYTHONPATH"] = os.pathsep.join([site, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.run([sys.executable, "-m", "mzc", *args], capture_output=True, text=True, env=env, cwd=cwd)


def test_plugin_codec_round_trips_through_the_cli(tmp_path, nuclei_path):
    site = install(tmp_path / "site", broken=True)
    help_text = mzc_cli(["encode", "--help"], site)
    assert help_text.returncode == 0 and "roundq" in help_text.stdout
    out = tmp_path / "x.mzc"
    enc = mzc_cli(["encode", "--codec", "roundq", "-q", "40dB", str(nuclei_path), "-o", str(out), "--json"], site)
    assert enc.returncode == 0, enc.stderr
    assert "Traceback" not in enc.stderr
    back = tmp_path / "back.tif"
    dec = mzc_cli(["decode", str(out), "-o", str(back)], site)
    assert dec.returncode == 0, dec.stderr
    original, decoded = tifffile.imread(nuclei_path), tifffile.imread(back)
    mse = float(np.mean((original.astype(float) - decoded.astype(float)) ** 2))
    assert psnr(mse, float(original.max()) - float(original.min())) >= 40.0
    assert not np.array_equal(original, decoded)  # it really was the lossy plug-in
    info = mzc_cli(["info", "--json", str(out)], site)
    assert '"id": "roundq"' in info.stdout


def test_a_file_needing_a_missing_plugin_is_refused_by_name(tmp_path, nuclei_path):
    site = install(tmp_path / "site")
    out = tmp_path / "x.mzc"
    assert mzc_cli(["encode", "--codec", "roundq", "-q", "35dB", str(nuclei_path), "-o", str(out)], site).returncode == 0
    without = mzc_cli(["decode", str(out), "-o", str(tmp_path / "b.tif")])
    assert without.returncode == 1
    assert "mzc: error:" in without.stderr and "unknown codec 'roundq'" in without.stderr
    assert "Traceback" not in without.stderr
    assert not (tmp_path / "b.tif").exists()
    assert mzc_cli(["info", str(out)]).returncode == 0  # the header is still readable
