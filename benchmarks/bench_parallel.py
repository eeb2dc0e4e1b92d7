"""Encode throughput with 1 and 2 local worker processes and on a 2-worker dask LocalCluster; peak RSS per worker.

  python benchmarks/bench_parallel.py            (needs ~10 GB free in MZC_BENCH_TMP, default /tmp)

A >= 4 GB synthetic 16-bit stack (2048 planes of 1024x1024, smooth pattern + Poisson-like noise, from bench_scale)
is encoded losslessly (every chunk decoded back and compared) three ways; the three files must be byte-identical.
Goals (issue 6): near-linear scaling with workers for classic codecs, peak RSS per worker <= 1.5 GB.
Results: benchmarks/results/parallel.md.
"""
from __future__ import annotations

import filecmp
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scale import make_stack, peak_rss
from common import machine, write_md

PLANES = 2048


class PeakSampler:
    """Largest RSS seen per process, sampled every 0.1 s (ru_maxrss is useless here: forked workers inherit it)."""

    def __init__(self, pids):
        import psutil
        self.procs = {pid: psutil.Process(pid) for pid in pids}
        self.peak = dict.fromkeys(pids, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            for pid, proc in self.procs.items():
                try:
                    self.peak[pid] = max(self.peak[pid], proc.memory_info().rss)
                except Exception:  # noqa: BLE001 - a process that ended keeps its last peak
                    pass
            time.sleep(0.1)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def dask_run(src: Path, out: Path) -> tuple[float, list[float], float]:
    """Encode on a 2-worker LocalCluster in a fresh process; (wall s, worker peak MB, driver peak MB)."""
    import distributed

    from mzc.parallel import encode_many
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        workers = list(client.run(os.getpid).values())
        with PeakSampler([*workers, os.getpid()]) as sampler:
            t = time.perf_counter()
            encode_many([str(src)], client=client, outputs=[str(out)])
            wall = time.perf_counter() - t
    return wall, [sampler.peak[w] / 2 ** 20 for w in workers], sampler.peak[os.getpid()] / 2 ** 20


def main():
    tmp = Path(tempfile.mkdtemp(dir=os.environ.get("MZC_BENCH_TMP", "/tmp")))
    try:
        src = tmp / "stack.tif"
        t = time.perf_counter()
        make_stack(src, PLANES)
        raw = PLANES * 1024 * 1024 * 2
        print(f"stack written in {time.perf_counter() - t:.0f} s", flush=True)
        rows = ["| run | raw GB | wall s | MB/s | speed-up | peak RSS per worker MB | peak RSS driver MB |",
                "|---|---|---|---|---|---|---|"]
        walls = {}
        for workers in (1, 2):
            out = tmp / f"local{workers}.mzc"
            rss, wall = peak_rss(["encode", str(src), "-o", str(out), "-T", str(workers), "--quiet"])
            walls[workers] = wall
            note = "(one process)" if workers == 1 else "(largest process)"
            rows.append(f"| local -T {workers} | {raw / 1e9:.2f} | {wall:.1f} | {raw / 1e6 / wall:.1f} | "
                        f"{walls[1] / wall:.2f}x | {rss:.0f} {note} | — |")
            print(rows[-1], flush=True)
        code = ("import json, sys; sys.path.insert(0, sys.argv[3]); from bench_parallel import dask_run; "
                "from pathlib import Path; print(json.dumps(dask_run(Path(sys.argv[1]), Path(sys.argv[2]))))")
        done = subprocess.run([sys.executable, "-c", code, str(src), str(tmp / "dask.mzc"),
                               str(Path(__file__).resolve().parent)], check=True, capture_output=True, text=True)
        wall, peaks, driver = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append(f"| dask LocalCluster, 2 workers x 1 thread | {raw / 1e9:.2f} | {wall:.1f} | "
                    f"{raw / 1e6 / wall:.1f} | {walls[1] / wall:.2f}x | {' / '.join(f'{v:.0f}' for v in peaks)} | "
                    f"{driver:.0f} |")
        print(rows[-1], flush=True)
        same = filecmp.cmp(tmp / "local1.mzc", tmp / "local2.mzc", shallow=False) and \
            filecmp.cmp(tmp / "local1.mzc", tmp / "dask.mzc", shallow=False)
        ratio = raw / (tmp / "local1.mzc").stat().st_size
        lines = [f"Machine: {machine()}. `python benchmarks/bench_parallel.py`: lossless encode (every chunk decoded",
                 f"back and compared) of a {raw / 1e9:.2f} GB synthetic 16-bit stack ({PLANES} x 1024 x 1024, ratio "
                 f"{ratio:.2f}x). The three files are byte-identical: {same}.", "", *rows, "",
                 "Peak RSS: local runs, `ru_maxrss` of the largest process (the pool's workers or the single "
                 "process); cluster run (a fresh process), RSS sampled every 0.1 s for each dask worker and for the "
                 "driver, which reads the TIFF, ships the chunks and writes the file. On 2 cores the cluster run "
                 "has three busy processes (driver + 2 workers) where the local pool has two."]
        write_md("parallel.md", "Parallel and distributed encoding", lines)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
