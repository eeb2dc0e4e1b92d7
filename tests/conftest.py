"""Shared fixtures: the bundled synthetic samples and the real evaluation data in ../shared/data (skipped if absent)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import tifffile

ROOT = Path(__file__).resolve().parent.parent
TESTDATA = ROOT / "testdata"
SHARED = Path(os.environ.get("MZC_SHARED_DATA", ROOT.parent / "shared" / "data"))
REAL_FILES = sorted(SHARED.glob("*.tif")) if SHARED.is_dir() else []


def real_file(name: str) -> Path:
    path = SHARED / name
    if not path.is_file():
        pytest.skip(f"real data {path} is absent (CI has ../shared/data; set MZC_SHARED_DATA to run locally)")
    return path


@pytest.fixture
def nuclei_path() -> Path:
    return TESTDATA / "nuclei2d_u16.tif"


@pytest.fixture
def ome_path() -> Path:
    return TESTDATA / "stack3d_u16.ome.tif"


@pytest.fixture
def imagej_path() -> Path:
    return TESTDATA / "timelapse_u8.tif"


def write_tiff(path: Path, data: np.ndarray, axes: str) -> Path:
    tifffile.imwrite(path, data, metadata={"axes": axes}, photometric="minisblack")
    return path


@pytest.fixture
def decodes(monkeypatch):
    """The chunk numbers the reader decodes (every decode, whole or sampled, goes through decode_many)."""
    from mzc.io import reader as reader_module
    calls = []
    original = reader_module.decode_many

    def counting(fn, jobs, *args, **kwargs):
        def tapped():
            for index, job in jobs:
                calls.append(index)
                yield index, job
        return original(fn, tapped(), *args, **kwargs)

    monkeypatch.setattr(reader_module, "decode_many", counting)
    return calls
