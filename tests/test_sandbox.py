"""The sandbox that runs native decoders: a crash, a hang, a memory bomb or a printed error fails the one job with a
one-line error, the process is replaced, the other jobs and the caller go on."""
from __future__ import annotations

import ctypes
import os
import time

import numpy as np
import pytest

from mzc import sandbox
from mzc.errors import MzcError
from mzc.sandbox import Limits, SandboxError

pytestmark = pytest.mark.skipif(not sandbox.enabled(), reason="the sandbox needs fork on Linux")
QUICK = Limits(seconds=1.5, memory=256 << 20)


def ramp(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.uint16)


def segfault():
    ctypes.string_at(0)


def loop_forever():
    while True:
        pass


def allocate(n: int):
    return np.ones(n, np.uint8)


def speak():
    os.write(2, b"ojph error: marker out of place\n")
    return 1


def ignore_an_exception():
    class Noisy:
        def __del__(self):
            raise RuntimeError("ojph error")
    Noisy()
    return 1


def refuse():
    raise MzcError("corrupt chunk: refused")


def pid() -> int:
    return os.getpid()


def test_results_come_back_in_order_small_and_large():
    got = list(sandbox.imap(ramp, [((n,), QUICK) for n in (0, 3, 1 << 20, 5)], workers=2))
    assert [len(g) for g in got] == [0, 3, 1 << 20, 5]
    assert all(np.array_equal(g, np.arange(len(g), dtype=np.uint16)) for g in got)
    big = got[2]
    big[0] = 7  # an array from shared memory is an ordinary writable array
    assert big[0] == 7


@pytest.mark.parametrize("job,message", [
    (segfault, "crashed (SIGSEGV)"),
    (os.abort, "crashed (SIGABRT"),
    (loop_forever, "did not finish within its 1.5 s deadline"),
    (speak, "reported an error: ojph error: marker out of place"),
    (ignore_an_exception, "reported an error: RuntimeError: ojph error"),
])
def test_a_failing_job_is_one_error_and_the_next_job_runs(job, message):
    started = time.monotonic()
    with pytest.raises(SandboxError, match=message.replace("(", r"\(").replace(")", r"\)")):
        sandbox.run(job, (), QUICK)
    assert time.monotonic() - started < 10
    assert sandbox.run(ramp, (4,), QUICK).tolist() == [0, 1, 2, 3]


def test_memory_bomb_hits_the_address_space_limit():
    with pytest.raises(SandboxError, match="memory limit of 256 MiB"):
        sandbox.run(allocate, (1 << 31,), QUICK)
    assert sandbox.run(allocate, (1 << 20,), QUICK).sum() == 1 << 20  # within the limit, and a fresh process


def test_mzc_errors_keep_their_message():
    with pytest.raises(MzcError, match="^corrupt chunk: refused$"):
        sandbox.run(refuse, (), QUICK)


def test_errors_can_be_collected_instead_of_raised_and_the_pool_recovers():
    jobs = [((), QUICK), ((), QUICK)]
    out = list(sandbox.imap(segfault, jobs, workers=2, raise_errors=False))
    assert all(isinstance(e, SandboxError) for e in out)
    mixed = list(sandbox.imap(ramp, [((2,), QUICK), ((3,), None)], workers=1))  # None: run in this process
    assert [len(m) for m in mixed] == [2, 3]


def test_processes_persist_between_calls():
    first = sandbox.run(pid, (), QUICK)
    assert sandbox.run(pid, (), QUICK) == first != os.getpid()


def test_abandoned_run_leaves_no_stale_result():
    run = sandbox.imap(ramp, [((n,), QUICK) for n in range(1, 6)], workers=2)
    assert len(next(run)) == 1
    run.close()  # two jobs were in flight: their processes are ended, not read later by someone else
    assert sandbox.run(ramp, (9,), QUICK).tolist() == list(range(9))


def chunk_pid(*args) -> int:
    return os.getpid()


def test_a_context_coded_file_decodes_on_every_worker(tmp_path):
    """mzc's own (non-native) chunks ran inline in the reader whenever the sandbox was on, so `-T 2` decoded a
    default file on one core (5.0 s vs 3.1 s without the sandbox on a 41 MB stack); with workers they now go to the
    sandbox's processes, and with one worker they still run here."""
    import mzc
    from mzc.io.decoding import decode_many
    from tests.conftest import write_tiff
    data = np.random.default_rng(0).poisson(300, (6, 64, 80)).astype(np.uint16)
    src = write_tiff(tmp_path / "s.tif", data, "ZYX")
    mzc.encode(str(src), str(tmp_path / "s.mzc"), chunks=(1, 64, 80))
    with mzc.open(str(tmp_path / "s.mzc")) as mz:
        jobs = list(mz._jobs(range(mz.grid.n_chunks)))
        two = {p for _, p in decode_many(chunk_pid, jobs, mz._codec_packed, workers=2)}
        one = {p for _, p in decode_many(chunk_pid, jobs, mz._codec_packed, workers=1)}
        np.testing.assert_array_equal(mz.read(workers=2), data)
    assert len(two) == 2 and os.getpid() not in two
    assert one == {os.getpid()}
