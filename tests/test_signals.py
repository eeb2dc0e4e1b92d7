"""Signals and crashes leave nothing behind (issue 26, item 2): SIGTERM, SIGHUP and SIGINT sent at random moments
end a run with 128 + the signal number, no temp file, every output present whole; whatever kills mzc (SIGKILL too),
no worker or sandbox process outlives it."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid

import numpy as np
import pytest
import tifffile

import mzc

SEED = int(os.environ.get("MZC_SIGNAL_SEED", random.randrange(1 << 30)))
MOMENTS = 2  # per signal: the moments are drawn from the span of a whole run (start-up, work, writing)


def tagged(tag: str) -> list[int]:
    """Processes whose environment carries the run's tag: the mzc process and everything it forked."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/environ", "rb") as fh:
                    if f"MZC_TEST_TAG={tag}".encode() in fh.read().split(b"\0"):
                        found.append(int(entry))
            except OSError:
                continue
    return found


def survivors(tag: str, grace: float = 5.0) -> list[int]:
    deadline = time.monotonic() + grace
    while (left := tagged(tag)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def send_at(args, sig: int, delay: float, cwd):
    tag = uuid.uuid4().hex
    env = dict(os.environ, MZC_TEST_TAG=tag)
    proc = subprocess.Popen([sys.executable, "-m", "mzc", *args], cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    time.sleep(delay)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err.decode(), tag


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    folder = tmp_path_factory.mktemp("signals")
    rng = np.random.default_rng(0)
    for i in range(6):
        tifffile.imwrite(folder / f"f{i}.tif", (rng.poisson(300, (384, 384)) + 100 * i).astype(np.uint16))
    return folder


def check_left_behind(folder, tag: str) -> None:
    assert not [p.name for p in folder.rglob(".mzc-*")], "temp files left behind"
    assert not survivors(tag), "a worker or sandbox process outlived mzc"
    for out in folder.glob("*.mzc"):  # what was renamed into place is whole
        assert mzc.verify(str(out))["ok"], out


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name)
def test_a_signal_at_random_moments_ends_the_batch_cleanly(batch, sig):
    rng = random.Random(SEED + sig)
    for _ in range(MOMENTS):
        for out in batch.glob("*.mzc"):
            out.unlink()
        delay = rng.uniform(0.3, 3.0)
        code, err, tag = send_at(["encode", "-T", "2", "--noise", "1", *sorted(p.name for p in batch.glob("*.tif"))],
                                 sig, delay, batch)
        check_left_behind(batch, tag)
        assert code in (0, 128 + sig), (SEED, delay, code, err)
        if code:
            assert err.strip().splitlines()[-1].startswith("mzc: error: "), err
            assert "Traceback" not in err, err


def test_workers_die_with_a_killed_parent(batch):
    rng = random.Random(SEED)
    for _ in range(MOMENTS):
        for out in batch.glob("*.mzc"):
            out.unlink()
        delay = rng.uniform(1.0, 3.0)
        code, err, tag = send_at(["encode", "-T", "2", "--noise", "1", *sorted(p.name for p in batch.glob("*.tif"))],
                                 signal.SIGKILL, delay, batch)
        assert code in (0, -signal.SIGKILL), (SEED, delay, code, err)
        check_left_behind(batch, tag)  # the workers wrote the outputs: told of the death, they removed theirs


def test_a_signal_during_decode_leaves_no_part_and_no_sandbox(batch, tmp_path):
    mzc.encode(str(batch / "f0.tif"), str(tmp_path / "s.mzc"), noise=1.0, chunks=(64, 64))
    rng = random.Random(SEED + 1)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        delay = rng.uniform(0.3, 1.5)
        code, err, tag = send_at(["decode", "-f", "-T", "2", "s.mzc", "-o", "back.tif"], sig, delay, tmp_path)
        assert code in (0, 128 + sig), (SEED, delay, code, err)
        assert not list(tmp_path.glob(".mzc-*")) and not survivors(tag)
        if code == 0:
            assert (tmp_path / "back.tif").stat().st_size > 0
