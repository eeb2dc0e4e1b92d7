"""docs/api.md's examples run as written, in order, and their assertions hold."""
from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

from tests.conftest import ROOT, TESTDATA, write_tiff

DOC = ROOT / "docs" / "api.md"


def blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)


def test_api_examples_run(tmp_path, monkeypatch):
    pytest.importorskip("zarr", reason="the [zarr] extra is not installed")
    rng = np.random.default_rng(1)
    write_tiff(tmp_path / "stack.tif", rng.poisson(800, (6, 128, 160)).astype(np.uint16), "ZYX")
    shutil.copy(TESTDATA / "nuclei2d_u16.tif", tmp_path / "nuclei.tif")
    monkeypatch.chdir(tmp_path)
    code = blocks()
    assert len(code) >= 8  # encode, read, decode, info/verify, writer, encode_many, zarr, eval/bench
    for k, block in enumerate(code):
        exec(compile(block, f"docs/api.md block {k + 1}", "exec"), {"__name__": "__doc__"})
