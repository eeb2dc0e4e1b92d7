"""Sandbox processes for decoders that cannot run in a fork (torch): a fresh interpreter runs the codec's set-up
before its memory limit, then serves jobs like a forked one; a failure reports its real cause."""
from __future__ import annotations

import ctypes
import os
import sys

import numpy as np
import pytest

from mzc import sandbox
from mzc.codecs.neural import learned
from mzc.errors import MzcError
from mzc.sandbox import Limits, SandboxError, supervisor

pytestmark = pytest.mark.skipif(not sandbox.enabled(), reason="the sandbox needs fork on Linux")
HERE = __name__  # the fresh process imports this module to run its jobs
TIGHT = Limits(seconds=60, memory=64 << 20)
BALLAST_BYTES = 200 << 20  # what a set-up maps (libtorch: more) beyond a job's limit
BALLAST: list = []


def load_ballast() -> None:
    BALLAST.append(np.ones(BALLAST_BYTES, np.uint8))


def ballast_then_size() -> int:
    """A forked sandbox's job that has to load its libraries itself, under the limit."""
    load_ballast()
    return ballast_size()


def ballast_size() -> int:
    return sum(b.size for b in BALLAST)


def who() -> tuple[str, int]:
    return sys.argv[0], os.getppid()


def env_value(name: str) -> str | None:
    return os.environ.get(name)


def segfault():
    ctypes.string_at(0)


def refuse_setup() -> None:
    raise MzcError("this decoder needs a package that is missing")


def run(fn, runtime: str, limits: Limits = TIGHT, args: tuple = ()):
    return next(sandbox.imap(fn, [(args, limits)], 1, runtime=runtime))


def test_a_fresh_process_loads_its_runtime_before_the_limit():
    runtime = f"{HERE}:load_ballast"
    assert run(ballast_size, runtime) == BALLAST_BYTES  # the set-up's 200 MB did not count against 64 MB
    assert run(who, runtime) == ("-c", os.getpid())  # a new interpreter (not a fork), our child
    with pytest.raises(SandboxError, match="memory limit of 64 MiB"):  # what a fork would have to do instead
        next(sandbox.imap(ballast_then_size, [((), TIGHT)], 1))


def test_a_fresh_process_sees_the_environment_of_its_jobs(monkeypatch):
    """Its set-up and its decoder read the environment ($MZC_MODELS): a process started before a change is
    replaced, not reused."""
    runtime = f"{HERE}:load_ballast"
    monkeypatch.delenv("MZC_FRESH_TEST", raising=False)
    assert run(env_value, runtime, args=("MZC_FRESH_TEST",)) is None
    monkeypatch.setenv("MZC_FRESH_TEST", "models-here")
    assert run(env_value, runtime, args=("MZC_FRESH_TEST",)) == "models-here"


def test_a_crash_in_a_fresh_process_says_so_and_the_next_job_runs():
    runtime = f"{HERE}:load_ballast"
    with pytest.raises(SandboxError, match=r"crashed \(SIGSEGV\)"):
        run(segfault, runtime)
    assert run(ballast_size, runtime) == BALLAST_BYTES


def test_a_failed_set_up_reports_its_cause():
    with pytest.raises(MzcError, match="^this decoder needs a package that is missing$"):
        run(ballast_size, f"{HERE}:refuse_setup")
    with pytest.raises(SandboxError, match="could not start: ModuleNotFoundError: No module named 'no_such_module"):
        run(ballast_size, "no_such_module_mzc:setup")


def test_processes_start_only_as_jobs_need_them():
    runtime = f"{HERE}:load_ballast"
    got = list(sandbox.imap(ballast_size, [((), TIGHT)], workers=4, runtime=runtime))
    assert got == [BALLAST_BYTES]
    assert len([p for p in supervisor._current(runtime).procs if p.alive]) == 1


@pytest.mark.parametrize("failure, message", [
    (ModuleNotFoundError("No module named 'torch'", name="torch"), "need PyTorch and CompressAI: pip install"),
    (ImportError("libtorch_cuda.so: failed to map segment from shared object"), "could not be loaded \\(out of memory"),
    (OSError("libc10.so: invalid ELF header"), "could not be loaded \\(an error: OSError: libc10.so"),
])
def test_learned_says_why_torch_did_not_load(monkeypatch, failure, message):
    def fail(name):
        raise failure
    monkeypatch.setattr(learned, "import_module", fail)
    with pytest.raises(MzcError, match=message):
        learned.require_torch()


def test_an_allocation_failure_is_reported_as_memory_not_as_a_corrupt_chunk():
    from mzc.io.decoding import failure
    torch_says = RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory")
    assert failure(torch_says) == "out of memory decoding the chunk"
    assert failure(MemoryError("std::bad_alloc")) == "out of memory decoding the chunk"
    assert failure(ValueError("marker out of place")) == "corrupt chunk"
