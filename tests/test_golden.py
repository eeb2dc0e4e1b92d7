"""Files written by an earlier mzc (testdata/golden, commit c40a000) still decode: the format and every codec's
decoder are a promise to the archives users already hold.

What is pinned is what mzc controls. Bit-exact and error-bounded codecs (the Exact, MaxErrorCoder and NoiseCoder
roles) decode through mzc's own integer code and lossless libraries, so their samples are pinned to the sha256
recorded when the files were written. A lossy codec's samples come out of a third-party float decoder (OpenJPEG,
OpenJPH, libjxl, libavif, SPERR, torch) whose rounding moves between releases (OpenJPH 0.26 changed htj2k_20x's
sha256 at the same PSNR and max error), so those files are held to the fidelity the encoder measured and stored in
the file: PSNR against the source image within 0.1 dB, max error within 2 percent (a bounded file: never above it).
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os

import numpy as np
import pytest
import tifffile

import mzc
from mzc.codecs.base import BoundWrapper, Exact, MaxErrorCoder, NoiseCoder
from tests.conftest import TESTDATA

GOLDEN = TESTDATA / "golden"
EXPECTED = json.loads((GOLDEN / "expected.json").read_text())["files"]
PSNR_SLACK_DB = 0.1  # measured: htj2k_20x under OpenJPH 0.26 has new samples, the same PSNR to 0.001 dB
MAX_ERROR_SLACK = 0.02


def digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()).hexdigest()


def codec_class(name: str):
    with mzc.open(str(GOLDEN / f"{name}.mzc")) as mz:
        return type(mz.codec)


def pinned_exactly(name: str) -> bool:
    return issubclass(codec_class(name), (Exact, MaxErrorCoder, NoiseCoder))


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, np.ndarray]:
    """The images the golden files were encoded from, by file name (make_golden.py cuts the small stacks)."""
    spec = importlib.util.spec_from_file_location("make_golden", GOLDEN / "make_golden.py")
    make_golden = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_golden)
    folder = str(tmp_path_factory.mktemp("golden_sources"))
    paths = [str(TESTDATA / "nuclei2d_u16.tif"), *make_golden.small_stacks(folder).values(),
             *make_golden.other_dtypes(folder).values()]
    return {os.path.basename(p): tifffile.imread(p) for p in paths}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_golden_file_decodes_to_what_mzc_promises(name, sources):
    want = EXPECTED[name]
    with mzc.open(str(GOLDEN / f"{name}.mzc")) as mz:
        back = mz.read()
        checked, errors = mz.verify()
    assert not errors and checked >= 1
    assert list(back.shape) == want["shape"] and back.dtype.str == want["dtype"]
    if pinned_exactly(name):
        assert digest(back) == want["sha256"]
        return
    report = mzc.info(str(GOLDEN / f"{name}.mzc"))["report"]
    original = sources[os.path.basename(report["input"])].reshape(back.shape).astype(np.float64)
    error = np.abs(back.astype(np.float64) - original)
    lo, hi = report["data_range"]
    psnr = 10 * np.log10((hi - lo) ** 2 / np.mean(error ** 2))
    assert abs(psnr - report["psnr_db"]) <= PSNR_SLACK_DB, (psnr, report["psnr_db"])
    slack = 0 if issubclass(codec_class(name), BoundWrapper) else max(2, MAX_ERROR_SLACK * report["max_abs_error"])
    assert error.max() <= report["max_abs_error"] + slack


def test_the_exact_pins_cover_every_role_codec_the_golden_files_use():
    exact = {codec_class(name).id for name in EXPECTED if pinned_exactly(name)}
    assert {"lossless", "nearlossless", "noise"} <= exact


def test_golden_files_keep_their_metadata():
    info = mzc.info(str(GOLDEN / "lossless_ome.mzc"))
    assert info["tiff_kind"] == "ome" and info["axes"] == "ZCYX"
    with mzc.open(str(GOLDEN / "lossless_ome.mzc")) as mz:
        assert 'PhysicalSizeX="0.325"' in mz.metadata["description"]
    assert mzc.info(str(GOLDEN / "lossless_imagej.mzc"))["tiff_kind"] == "imagej"


@pytest.mark.parametrize("name", sorted(n for n in EXPECTED if n.startswith("lossless")))
def test_an_old_files_infinite_psnr_reads_as_null(name):
    """Files written before reports used null for an exact decoding store the string "inf": readers see null."""
    from mzc.format.container import REPORT, unpack_msg
    with mzc.open(str(GOLDEN / f"{name}.mzc")) as mz:
        assert unpack_msg(mz.container.ancillary(REPORT), "report")["psnr_db"] == "inf"  # as written then
        assert mz.report["psnr_db"] is None and mz.report["psnr_dtype_db"] is None and mz.report["max_abs_error"] == 0
