"""Many files and clusters: encode_many locally and on a real dask LocalCluster gives the same bytes as one process."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

import mzc
from mzc import pool as maps
from mzc.cli import cli
from mzc.parallel import encode_many, mzc_name
from tests.conftest import write_tiff

distributed = pytest.importorskip("distributed", reason="the [dask] extra is not installed")


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as lc:
        with distributed.Client(lc) as client:
            yield client


def stacks(tmp_path, count=3):
    rng = np.random.default_rng(3)
    paths = []
    for k in range(count):
        base = rng.integers(100, 4000, (1, 96, 128)).astype(np.float64)
        data = np.clip(base + rng.normal(0, 20, (4 + k, 96, 128)), 0, 65535).astype(np.uint16)
        paths.append(str(write_tiff(tmp_path / f"s{k}.tif", data, "ZYX")))
    return paths


def test_same_bytes_locally_in_processes_and_on_a_dask_cluster(tmp_path, cluster):
    paths = stacks(tmp_path)
    for options in ({}, {"codec": "j2k", "quality": "45dB"}, {"noise": 1.0}):
        one = [p.replace(".tif", ".one.mzc") for p in paths]
        pool = [p.replace(".tif", ".pool.mzc") for p in paths]
        dask = [p.replace(".tif", ".dask.mzc") for p in paths]
        for path, out in zip(paths, one):
            mzc.encode(path, out, workers=1, chunks=(1, 48, 64), **options)
        encode_many(paths, outputs=pool, workers=2, chunks=(1, 48, 64), **options)
        with distributed.get_task_stream(cluster) as stream:
            reports = encode_many(paths, client=cluster, outputs=dask, chunks=(1, 48, 64), **options)
        ran = {t["worker"] for t in stream.data}
        assert len(stream.data) >= sum(r["shape"][0] * 4 for r in reports)  # every chunk was a task
        assert len(ran) == 2  # on both workers
        for a, b, c in zip(one, pool, dask):
            assert open(a, "rb").read() == open(b, "rb").read() == open(c, "rb").read(), options


def test_encode_many_default_names_and_reports(tmp_path):
    paths = stacks(tmp_path, 2)
    reports = encode_many(paths, workers=2)
    assert [r["output"] for r in reports] == [p[:-4] + ".mzc" for p in paths]
    for path, rep in zip(paths, reports):
        with mzc.open(rep["output"]) as mz:
            assert "encode_seconds" not in mz.report  # timings are not stored: same input, same bytes
            np.testing.assert_array_equal(mz.read(), __import__("tifffile").imread(path))
    assert mzc_name("a/b.ome.tif") == "a/b.mzc" and mzc_name("x.TIFF") == "x.mzc" and mzc_name("raw") == "raw.mzc"


def test_cli_scheduler(tmp_path, cluster):
    paths = stacks(tmp_path, 1)
    out = tmp_path / "c.mzc"
    res = CliRunner().invoke(cli, ["encode", paths[0], "-o", str(out), "--scheduler", cluster.scheduler.address,
                                   "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["ratio"] > 1
    local = tmp_path / "l.mzc"
    mzc.encode(paths[0], str(local))
    assert out.read_bytes() == local.read_bytes()


def test_cli_unreachable_scheduler_is_one_line(tmp_path):
    paths = stacks(tmp_path, 1)
    res = CliRunner().invoke(cli, ["encode", paths[0], "--scheduler", "tcp://127.0.0.1:9"])
    assert res.exit_code == 1 and "cannot reach the dask scheduler" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "s0.mzc").exists()


def test_dask_map_keeps_order_and_bounds_flight(cluster):
    in_flight = []

    def items():
        for i in range(20):
            in_flight.append(sum(1 for f in cluster.futures.values() if f.status == "pending"))
            yield (-i,)

    assert list(maps.dask_map(cluster, abs, items(), ahead=3)) == list(range(20))
    assert max(in_flight) <= 3


def test_cli_many_small_files_one_per_process(tmp_path):
    paths = stacks(tmp_path, 3)
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"II*\x00 not really a tiff")
    res = CliRunner().invoke(cli, ["encode", *paths, str(bad), "-T", "2", "--json", "--max-error", "2"])
    assert res.exit_code == 1
    errors = [line for line in res.output.splitlines() if line.startswith("mzc: error:")]
    assert len(errors) == 1 and "bad.tif" in errors[0]
    for path in paths:  # the good files are written, byte for byte as one process writes them
        single = tmp_path / "single.mzc"
        mzc.encode(path, str(single), workers=1, max_error=2)
        assert open(mzc_name(path), "rb").read() == single.read_bytes()
    assert not (tmp_path / "bad.mzc").exists()
