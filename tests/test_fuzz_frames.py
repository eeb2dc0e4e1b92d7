"""Forged Zarr chunks (frames.py) cost that chunk an MzcError, never the reading process (issue 26, item 4).

A frame's CRC-32C covers its body, so a forger recomputes it: each forged frame here has 1-8 bytes of its body
changed and a valid CRC, as an attacker's would. Decoding in the reading process let 3 of 600 such SPERR frames
abort it (std::bad_alloc); the chunk now decodes in the sandbox like a .mzc file's. The settings come from the
registry: every role codec, every classic library codec at its default knob, and a bounded one.
"""
from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mzc import sandbox
from mzc.codecs.base import AutoCandidate, Exact, LibraryCodec, MaxErrorCoder, NoiseCoder
from mzc.codecs.registry import providing, role
from mzc.encoding.request import EncodeRequest
from mzc.errors import MzcError
from mzc.format.container import pack_msg, unpack_msg
from mzc.integrations.frames import MAGIC, decode_frame, encode_frame
from mzc.io import decoding

pytestmark = pytest.mark.skipif(not sandbox.enabled(), reason="the sandbox needs fork on Linux")


def requests() -> dict[str, EncodeRequest]:
    found = {role(Exact).id: EncodeRequest(), role(MaxErrorCoder).id: EncodeRequest(max_error=3),
             role(NoiseCoder).id: EncodeRequest(noise=1.0),
             f"bounded-{providing(AutoCandidate)[0].id}": EncodeRequest(codec=providing(AutoCandidate)[0].id,
                                                                         max_error=8)}
    for cls in providing(LibraryCodec):
        found[cls.id] = EncodeRequest(codec=cls.id, knob=float(getattr(cls, "default_knob", 1.0)))
    return found


REQUESTS = requests()


def sample() -> np.ndarray:
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:48, :64]
    return np.clip(1200 + 600 * np.sin(yy / 6.0) * np.cos(xx / 8.0) + rng.normal(0, 20, (48, 64)), 0, 4095) \
        .astype(np.uint16)


def parts(frame: bytes) -> tuple[dict, bytes]:
    (n,) = struct.unpack("<I", frame[4:8])
    return unpack_msg(frame[8:8 + n], "frame"), frame[8 + n:]


def framed(meta: dict, body: bytes) -> bytes:
    import google_crc32c
    packed = pack_msg(dict(meta, k=google_crc32c.value(body)))  # the forger's CRC
    return MAGIC + struct.pack("<I", len(packed)) + packed + body


@pytest.fixture(scope="module")
def frames():
    block = sample()
    out = {name: encode_frame(request, block) for name, request in REQUESTS.items()}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(decoding, "DEADLINE_BASE_S", 5.0)  # a hang costs seconds, not the suite
        yield block, out


def outcome(frame: bytes, block: np.ndarray) -> str:
    try:
        back = decode_frame(frame)
    except MzcError as exc:
        assert "\n" not in str(exc)
        return "error"
    assert back.shape == block.shape and back.dtype == block.dtype
    return "decoded"


def test_clean_frames_decode_in_the_sandbox(frames, monkeypatch):
    block, out = frames
    sandboxed = []
    imap = sandbox.imap

    def watched(fn, jobs, *args, **kwargs):
        def tapped():
            for job, limits in jobs:
                sandboxed.append(limits is not None)
                yield job, limits
        return imap(fn, tapped(), *args, **kwargs)

    monkeypatch.setattr(sandbox, "imap", watched)
    for name, frame in out.items():
        sandboxed.clear()
        back = decode_frame(frame)
        assert back.shape == block.shape and back.dtype == block.dtype
        if name == role(Exact).id:
            assert np.array_equal(back, block)
        if name in {cls.id for cls in providing(LibraryCodec)}:
            assert sandboxed == [True], name  # a native decoder: under the sandbox's limits


@settings(max_examples=600, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(sorted(REQUESTS)), where=st.floats(0, 1), value=st.binary(min_size=1, max_size=8))
def test_forged_frames_fail_with_mzc_error_or_decode(frames, name, where, value):
    block, out = frames
    meta, body = parts(out[name])
    if not body:
        return
    at = min(int(where * len(body)), len(body) - 1)
    outcome(framed(meta, body[:at] + value + body[at + len(value):]), block)


@pytest.mark.parametrize("change, message", [
    ({"s": [1 << 20, 1 << 20]}, "exceeds"), ({"s": [-1, 64]}, "bad shape"), ({"s": "48x64"}, "bad shape"),
    ({"d": "<f8"}, "dtype"), ({"d": 7}, "dtype"), ({"c": []}, "header fields"), ({"p": None}, "header fields"),
    ({"c": {"id": "no-such-codec"}}, "unknown codec"),
])
def test_forged_frame_headers_are_refused(frames, change, message):
    block, out = frames
    meta, body = parts(out[role(Exact).id])
    with pytest.raises(MzcError, match=message):
        decode_frame(framed(dict(meta, **change), body))
