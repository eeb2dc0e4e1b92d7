"""Files written by an earlier mzc (testdata/golden, commit c40a000) decode bit-identically: the format and every
codec's decoder are a promise to the archives users already hold."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

import mzc
from tests.conftest import TESTDATA

GOLDEN = TESTDATA / "golden"
EXPECTED = json.loads((GOLDEN / "expected.json").read_text())["files"]


def digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()).hexdigest()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_golden_file_decodes_to_the_recorded_array(name):
    want = EXPECTED[name]
    with mzc.open(str(GOLDEN / f"{name}.mzc")) as mz:
        back = mz.read()
        checked, errors = mz.verify()
    assert not errors and checked >= 1
    assert list(back.shape) == want["shape"] and back.dtype.str == want["dtype"]
    assert digest(back) == want["sha256"]


def test_golden_files_keep_their_metadata():
    info = mzc.info(str(GOLDEN / "lossless_ome.mzc"))
    assert info["tiff_kind"] == "ome" and info["axes"] == "ZCYX"
    with mzc.open(str(GOLDEN / "lossless_ome.mzc")) as mz:
        assert 'PhysicalSizeX="0.325"' in mz.metadata["description"]
    assert mzc.info(str(GOLDEN / "lossless_imagej.mzc"))["tiff_kind"] == "imagej"
