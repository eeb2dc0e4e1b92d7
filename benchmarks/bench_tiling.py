"""How the tile grid changes lossy quality at equal real ratio (what the default chunking is chosen from).

nuclei2d_hoechst_u16.tif (1000x1200) at -q 200x and 50x with each codec, for several --chunk settings.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mzc
from common import DATA, machine, write_md

CHUNKS = [(1000, 1200), (1000, 600), (1000, 1024), (500, 600), (512, 512)]


def main():
    src = DATA / "nuclei2d_hoechst_u16.tif"
    rows = ["| target | codec | chunk | tiles | real ratio | PSNR dB (data range) |", "|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for quality in ("50x", "200x"):
            for codec in ("j2k", "htj2k", "avif", "sperr"):
                for chunks in CHUNKS:
                    rep = mzc.encode(str(src), str(Path(tmp) / "x.mzc"), codec=codec, quality=quality, chunks=chunks)
                    with mzc.open(str(Path(tmp) / "x.mzc")) as mz:
                        tiles = mz.grid.n_chunks
                    rows.append(f"| {quality} | {codec} | {chunks[0]}x{chunks[1]} | {tiles} | {rep['ratio']:.1f} | "
                                f"{rep['psnr_db']:.2f} |")
    write_md("tiling.md", "Tile grid vs lossy quality (nuclei2d_hoechst_u16, 1000x1200)",
             [f"Machine: {machine()}. Command: `python benchmarks/bench_tiling.py`.", "", __doc__.strip(), "",
              "The default grid is now equal tiles of at most 2048 a side (here: the whole 1000x1200 plane); it was "
              "1024x1024 with a 176-column edge tile (the 1000x1024 rows).", "", *rows])


if __name__ == "__main__":
    main()
