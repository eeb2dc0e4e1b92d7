"""Run untrusted native code (the image decoders fed a file's bytes) where it cannot take mzc down.

A forged stream can make a C/C++ decoder abort, segfault, loop forever, allocate gigabytes or print an error and
return garbage. Each job therefore runs in a forked sandbox process with an address-space limit (RLIMIT_AS) and a
deadline; a dead, stuck or over-budget process becomes a `SandboxError` for that job, and the process is replaced.
Anything the native code writes on stdout/stderr, and any "Exception ignored" it raises, fails the job too.

The processes persist (a fork is ~4 ms, a round trip ~20 us), so reading one small region does not pay a start-up
each time. Without fork (not Linux), or with MZC_SANDBOX=0, jobs run inline. Imports nothing from mzc but errors.
"""
from __future__ import annotations

from .supervisor import Limits, SandboxError, enabled, imap, run, shutdown

__all__ = ["Limits", "SandboxError", "enabled", "imap", "run", "shutdown"]
