"""The reader's own fuzzer (issue 17), CI-sized: random changes inside random records of files written by every
classic and bounded codec, all checksums rebuilt. Whatever the change, reading and verifying the file must give
exactly the original decode or a MzcError: never another exception, a crash, a hang, or different pixels.

tools/fuzz_reader.py runs the same forging for 100,000+ cases (benchmarks/results/fuzz.md).
"""
from __future__ import annotations

import io
import time

import numpy as np
import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mzc
from mzc.errors import MzcError
from mzc.io import decoding
from mzc.io.reader import MzcFile
from tests import forge
from tests.conftest import write_tiff

CODECS = {
    "lossless": {},
    "lossless-jpegls": {},
    "lossless-jpeg2k-ht": {},
    "lossless-jpegxl": {},
    "lossless-float32": {},
    "nearlossless": {"max_error": 3},
    "noise": {"noise": 1.0},
    "noise-jxl": {"noise": 1.0, "effort": "max"},
    "bounded-j2k": {"codec": "j2k", "max_error": 8},
    "j2k": {"codec": "j2k", "knob": 60.0},
    "htj2k": {"codec": "htj2k", "knob": 300.0},
    "jxl": {"codec": "jxl", "knob": 1.0},
    "avif": {"codec": "avif", "knob": 80.0},
    "sperr": {"codec": "sperr", "knob": 3.0},
    "sperr-3d": {"codec": "sperr", "knob": 3.0, "chunks": (3, 48, 64)},
}
KINDS = ("overwrite", "insert", "delete", "truncate", "flip")


def sample(name: str) -> np.ndarray:
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:48, :64]
    x = 1200 + 600 * np.sin(yy / 6.0) * np.cos(xx / 8.0) + rng.normal(0, 20, (3, 48, 64))
    return x.astype(np.float32) if name.endswith("float32") else np.clip(x, 0, 4095).astype(np.uint16)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    out = {}
    for name, options in CODECS.items():
        src = write_tiff(folder / f"{name}.tif", sample(name), "ZYX")
        mzc.encode(str(src), str(folder / f"{name}.mzc"), **options)
        raw = (folder / f"{name}.mzc").read_bytes()
        if name.startswith("lossless-") and not name.endswith("float32"):  # one native back end, whatever won
            raw = forge.with_backend(raw, name.removeprefix("lossless-"))
        out[name] = (raw, MzcFile(io.BytesIO(raw)).read(), len(forge.split(raw)[1]))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(decoding, "DEADLINE_BASE_S", 5.0)  # a hang costs seconds, not the suite
        yield out


def forged(raw: bytes, record: int, kind: str, where: float, value: bytes) -> bytes:
    return forge.edit(raw, record, lambda p: forge.mutate(p, kind, int(where * (len(p) + 1)), value))


def outcome(data: bytes, clean: np.ndarray) -> str:
    """'error' or 'same'; anything else fails the test."""
    try:
        mz = MzcFile(io.BytesIO(data))
        out = mz.read()
        mz.verify()
    except MzcError:
        return "error"
    assert out.shape == clean.shape and out.dtype == clean.dtype
    assert out.tobytes() == clean.tobytes(), "different pixels returned without an error"
    return "same"


@settings(max_examples=1500, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(sorted(CODECS)), record=st.integers(0, 64), kind=st.sampled_from(KINDS),
       where=st.floats(0, 1), value=st.binary(min_size=1, max_size=8))
def test_forged_files_decode_exactly_or_fail_with_mzc_error(files, name, record, kind, where, value):
    raw, clean, n_records = files[name]
    rss = psutil.Process().memory_info().rss
    started = time.monotonic()
    outcome(forged(raw, record % n_records, kind, where, value), clean)
    assert time.monotonic() - started < 30
    assert psutil.Process().memory_info().rss - rss < 256 << 20


def test_every_codec_meets_all_mutation_kinds_in_its_first_chunk(files):
    """The deterministic floor under the random search: each kind of change at spread positions of chunk 0."""
    counts = {}
    for raw, clean, _ in files.values():
        record = forge.data_records(raw)[0]
        for kind in KINDS:
            for where in (0.0, 0.01, 0.1, 0.37, 0.5, 0.93, 0.999):
                result = outcome(forged(raw, record, kind, where, b"\xa5\x00\xff"), clean)
                counts[result] = counts.get(result, 0) + 1
    assert counts.get("error", 0) > 0.8 * sum(counts.values())
