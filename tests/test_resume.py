"""Resumable, scriptable batches (issue 26 item 5): rerunning an interrupted `mzc encode -r DIR --rm` finishes the
job, --log keeps a facility's record, and nothing is deleted before its output is on disk."""
from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
import tifffile

import mzc
from tests.test_signals import survivors

SEED = int(os.environ.get("MZC_RESUME_SEED", random.randrange(1 << 30)))
KILLS = 5  # SIGKILLs per scenario, each at a random moment of a run, then the run that finishes


def run(args, cwd, env=None):
    proc = subprocess.run([sys.executable, "-m", "mzc", *args], cwd=cwd, capture_output=True, env=env)
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


def sha256(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture
def batch(tmp_path):
    """DIR with 5 real-looking 16-bit stacks (one in a subfolder) and pristine copies of them beside it."""
    rng = np.random.default_rng(3)
    folder, keep = tmp_path / "acq", tmp_path / "pristine"
    (folder / "pos2").mkdir(parents=True)
    keep.mkdir()
    names = ["a.tif", "b.tif", "c.tif", "d.tif", "pos2/e.tif"]
    for name in names:
        data = rng.poisson(rng.uniform(200, 900), (5, 96, 112)).astype(np.uint16)
        tifffile.imwrite(folder / name, data)
        (keep / name).parent.mkdir(exist_ok=True)
        shutil.copy(folder / name, keep / name)
    return tmp_path, names


def output_of(folder, name):
    return folder / name.replace(".tif", ".mzc")


def test_a_rerun_counts_verified_outputs_as_done_and_removes_their_inputs(batch):
    root, names = batch
    code, _, err = run(["encode", "-r", "acq", "--rm", "-T", "1"], root)
    assert code == 0, err
    for name in names[:2]:  # an interrupted --rm: the outputs were written, their inputs not yet removed
        shutil.copy(root / "pristine" / name, root / "acq" / name)
    code, _, err = run(["encode", "-r", "acq", "--rm", "--log", "batch.jsonl"], root)
    assert code == 0, err
    assert err.count("done before (verified against its input; input removed)") == 2, err
    assert not list((root / "acq").rglob("*.tif"))
    lines = [json.loads(line) for line in (root / "batch.jsonl").read_text().splitlines()]
    assert [(line["status"], line["input_removed"]) for line in lines] == [("done", True)] * 2
    for line, name in zip(lines, names[:2]):
        assert line["input_sha256"] == sha256(root / "pristine" / name)
        assert line["output_sha256"] == sha256(output_of(root / "acq", name)) and line["mode"] == "lossless"
        assert line["bytes_in"] == tifffile.imread(root / "pristine" / name).nbytes


def test_outputs_that_are_not_this_inputs_encoding_are_kept_and_a_damaged_one_is_redone(batch):
    root, names = batch
    acq = root / "acq"
    run(["encode", "-q", "8x", str(acq / "a.tif")], root)  # other settings
    run(["encode", "-o", str(acq / "b.mzc"), str(acq / "c.tif")], root)  # another image's file
    (acq / "c.mzc").write_bytes(b"not an mzc file, the user's own")
    run(["encode", str(acq / "d.tif")], root)
    damaged = output_of(acq, "d.tif")
    damaged.write_bytes(damaged.read_bytes()[:-100])  # truncated: its footer is gone
    before = {n: (acq / n).read_bytes() for n in ("a.mzc", "b.mzc", "c.mzc")}
    code, _, err = run(["encode", "-r", "acq", "--rm", "--log", "log.jsonl"], root)
    assert code == 2, err
    assert "a.mzc already exists; not overwritten (use -f): it was made with other settings (-q 8x)" in err
    assert "b.mzc already exists; not overwritten (use -f): it is not this input's encoding" in err
    assert "c.mzc already exists; not overwritten (use -f): it is not an .mzc file" in err
    assert "d.mzc is replaced: it is damaged (truncated" in err
    assert {n: (acq / n).read_bytes() for n in before} == before  # kept, byte for byte
    assert (acq / "a.tif").exists() and (acq / "b.tif").exists() and (acq / "c.tif").exists()
    assert not (acq / "d.tif").exists()
    np.testing.assert_array_equal(mzc.imread(str(damaged)), tifffile.imread(root / "pristine" / "d.tif"))
    status = {os.path.basename(r["input"]): r["status"] for r in map(json.loads, open(root / "log.jsonl"))}
    assert status == {"a.tif": "skipped", "b.tif": "skipped", "c.tif": "skipped", "d.tif": "encoded",
                      "e.tif": "encoded"}


def test_the_log_records_failures_and_the_exit_status_says_error(batch):
    root, _ = batch
    (root / "acq" / "broken.tif").write_bytes(b"II*\0" + b"\0" * 20)
    code, _, err = run(["encode", "-r", "acq", "--log", "log.jsonl", "-T", "2"], root)
    assert code == 1 and "broken.tif" in err
    records = {os.path.basename(r["input"]): r for r in map(json.loads, open(root / "log.jsonl"))}
    assert records["broken.tif"]["status"] == "failed" and records["broken.tif"]["error"]
    assert sorted(r["status"] for n, r in records.items() if n != "broken.tif") == ["encoded"] * 5
    assert all(r["seconds"] >= 0 and r["input_removed"] is False for r in records.values())


def test_sigkill_at_random_moments_then_rerun_finishes_with_nothing_lost(batch):
    """Each kill leaves every input intact or replaced by an output that decodes to it; the last run finishes."""
    root, names = batch
    rng = random.Random(SEED)
    env = dict(os.environ)
    for attempt in range(KILLS):
        tag = f"resume-{SEED}-{attempt}"
        env["MZC_TEST_TAG"] = tag
        proc = subprocess.Popen([sys.executable, "-m", "mzc", "encode", "-r", "acq", "--rm", "-T", "2",
                                 "--log", "log.jsonl"], cwd=root, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.2, 3.5))
        proc.kill()
        proc.wait()
        assert not survivors(tag), f"seed {SEED}: a worker outlived SIGKILL"
        for name in names:
            src, out = root / "acq" / name, output_of(root / "acq", name)
            if src.exists():
                assert src.read_bytes() == (root / "pristine" / name).read_bytes(), f"seed {SEED}: {name} changed"
            else:
                assert out.exists(), f"seed {SEED}: {name} removed before its output existed"
                np.testing.assert_array_equal(mzc.imread(str(out)), tifffile.imread(root / "pristine" / name))
    code, _, err = run(["encode", "-r", "acq", "--rm", "-T", "2", "--log", "log.jsonl"], root)
    assert code == 0, f"seed {SEED}: {err}"
    assert not list((root / "acq").rglob("*.tif")) and not list((root / "acq").rglob(".mzc-*")), f"seed {SEED}"
    for name in names:
        np.testing.assert_array_equal(mzc.imread(str(output_of(root / "acq", name))),
                                      tifffile.imread(root / "pristine" / name))
    removed = [r["input"] for r in map(json.loads, open(root / "log.jsonl")) if r["input_removed"]]
    assert sorted(removed) == sorted(os.path.join("acq", n) for n in names)  # each input's removal recorded once


def test_an_input_goes_only_after_its_output_and_folder_are_synced(batch, monkeypatch):
    """The order --rm keeps: fsync(output), fsync(its folder), then unlink(input) (SIGKILL alone cannot show it:
    the page cache survives a killed process, not a power cut)."""
    from click.testing import CliRunner

    from mzc.cli import cli
    root, _ = batch
    events = []
    real_fsync, real_unlink = os.fsync, os.unlink

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    def unlink(path, *a, **k):
        events.append(("unlink", os.path.abspath(path)))
        return real_unlink(path, *a, **k)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "unlink", unlink)
    monkeypatch.chdir(root)
    result = CliRunner().invoke(cli, ["encode", "--rm", "-T", "1", "acq/a.tif", "acq/b.tif"])
    assert result.exit_code == 0, result.output
    for name in ("a", "b"):
        gone = events.index(("unlink", str(root / "acq" / f"{name}.tif")))
        before = events[:gone]
        assert ("fsync", str(root / "acq" / f"{name}.mzc")) in before
        assert ("fsync", str(root / "acq")) in before


def test_unreadable_folders_and_inputs_are_errors(tmp_path, monkeypatch):
    """`mzc encode -r locked` printed nothing and exited 0; `locked/a.tif` said "no such file"."""
    from mzc.cli.common import Outcome
    from mzc.cli.outputs import check_readable, expand
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / "a.tif").write_bytes(b"x")
    real_scandir = os.scandir

    def scandir(path="."):
        if os.path.basename(os.fspath(path)) == "locked":
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    outcome = Outcome()
    assert expand([str(tmp_path / "locked")], True, (".tif",), outcome) == [] and outcome.status == 1
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(mzc.MzcError, match="cannot read: Permission denied"):
        check_readable(str(tmp_path / "locked" / "a.tif"))
    with pytest.raises(mzc.MzcError, match="no such file"):
        check_readable(str(tmp_path / "missing.tif"))


def test_temp_files_of_killed_runs_are_removed_by_the_next_run(tmp_path):
    from mzc.io.atomic import TEMP_SUFFIX, remove_stale_temps, temp_prefix
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f"{temp_prefix()}{dead.pid}-x1{TEMP_SUFFIX}"
    live = tmp_path / f"{temp_prefix()}{os.getpid()}-x2{TEMP_SUFFIX}"
    other_host = tmp_path / f".mzc-elsewhere-{dead.pid}-x3{TEMP_SUFFIX}"
    for path in (stale, live, other_host):
        path.write_bytes(b"partial")
    assert remove_stale_temps(str(tmp_path)) == [str(stale)]
    assert live.exists() and other_host.exists() and not stale.exists()
