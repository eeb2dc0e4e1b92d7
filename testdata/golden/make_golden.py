"""Write the golden .mzc files and their expected decodes (run once, by the mzc that wrote them).

These files were written by mzc at commit c40a000 (before the package was restructured) and must keep decoding:
tests/test_golden.py checks every one, bit-exact and bounded codecs against the sha256 recorded in expected.json,
lossy ones (whose third-party float decoders round differently between releases) against the fidelity stored in
the file. Do not regenerate them
with a newer mzc unless the format itself changes (a new major version), or they stop guarding anything.

    PYTHONPATH=<checkout of the old mzc>/src python testdata/golden/make_golden.py
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile

import numpy as np
import tifffile

HERE = os.path.dirname(os.path.abspath(__file__))
TESTDATA = os.path.dirname(HERE)


def small_stacks(folder: str) -> dict[str, str]:
    """Small OME-TIFF and ImageJ hyperstacks cut from the synthetic samples, with their metadata dialects."""
    stack = tifffile.imread(os.path.join(TESTDATA, "stack3d_u16.ome.tif"))[:3, :, :40, :48]
    ome = os.path.join(folder, "small.ome.tif")
    tifffile.imwrite(ome, stack, ome=True, photometric="minisblack",
                     metadata={"axes": "ZCYX", "PhysicalSizeX": 0.325, "PhysicalSizeY": 0.325, "PhysicalSizeZ": 1.5,
                               "Channel": {"Name": ["DAPI", "GFP"]}})
    movie = tifffile.imread(os.path.join(TESTDATA, "timelapse_u8.tif"))[:2, :, :32, :40]
    imagej = os.path.join(folder, "small_imagej.tif")
    tifffile.imwrite(imagej, movie, imagej=True, resolution=(1 / 0.5, 1 / 0.5),
                     metadata={"axes": "TZYX", "spacing": 2.0, "unit": "um", "finterval": 5.0})
    return {"ome": ome, "imagej": imagej}


def other_dtypes(folder: str) -> dict[str, str]:
    rng = np.random.default_rng(7)
    paths = {}
    for name, dtype in (("float32", np.float32), ("int16", np.int16), ("uint32", np.uint32)):
        data = (rng.normal(0, 200, (2, 48, 40)).cumsum(axis=2)).astype(dtype)
        paths[name] = os.path.join(folder, f"{name}.tif")
        tifffile.imwrite(paths[name], data, metadata={"axes": "ZYX"}, photometric="minisblack")
    return paths


def digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()).hexdigest()


def main() -> None:
    import mzc
    with tempfile.TemporaryDirectory() as tmp:
        nuclei = os.path.join(TESTDATA, "nuclei2d_u16.tif")
        extra = other_dtypes(tmp) | small_stacks(tmp)
        jobs = {
            "lossless_ome": (extra["ome"], {}),
            "lossless_imagej": (extra["imagej"], {}),
            "lossless_float32": (extra["float32"], {}),
            "lossless_int16": (extra["int16"], {}),
            "lossless_uint32": (extra["uint32"], {}),
            "nearlossless_e16": (nuclei, {"max_error": 16}),
            "noise_k1": (nuclei, {"noise": 1.0}),
            "noise_k1_max": (nuclei, {"noise": 1.0, "effort": "max"}),
            "j2k_20x": (nuclei, {"codec": "j2k", "quality": "20x"}),
            "htj2k_20x": (nuclei, {"codec": "htj2k", "quality": "20x"}),
            "jxl_45db": (nuclei, {"codec": "jxl", "quality": "45dB"}),
            "avif_20x": (nuclei, {"codec": "avif", "quality": "20x"}),
            "sperr_20x": (nuclei, {"codec": "sperr", "quality": "20x"}),
            "sperr_3d": (extra["ome"],
                         {"codec": "sperr", "quality": "8x", "chunks": (3, 1, 40, 48)}),
            "bounded_j2k_e16": (nuclei, {"codec": "j2k", "max_error": 16}),
            "bounded_sperr_noise": (nuclei, {"codec": "sperr", "noise": 2.0}),
            "learned_mean": (nuclei, {"codec": "learned:mbt2018-mean-q2"}),
            "learned_factorized": (nuclei, {"codec": "learned:bmshj2018-factorized-q3"}),
            "inr_32x": (nuclei, {"codec": "inr", "quality": "32x", "time_budget": 3}),
            "hybrid_16x": (nuclei, {"codec": "hybrid", "quality": "16x", "time_budget": 3}),
        }
        expected = {}
        for name, (source, options) in jobs.items():
            out = os.path.join(HERE, f"{name}.mzc")
            mzc.encode(source, out, **options)
            with mzc.open(out) as mz:
                back = mz.read()
                expected[name] = {"shape": list(back.shape), "dtype": back.dtype.str, "sha256": digest(back)}
        with mzc.StackWriter(os.path.join(HERE, "stackwriter.mzc"), (40, 48), "uint16", "TYX", noise=1.0,
                         noise_model="1,0") as writer:
            rng = np.random.default_rng(3)
            for t in range(3):
                writer.append((1000 + 50 * t + rng.poisson(100, (40, 48))).astype(np.uint16))
        with mzc.open(os.path.join(HERE, "stackwriter.mzc")) as mz:
            back = mz.read()
            expected["stackwriter"] = {"shape": list(back.shape), "dtype": back.dtype.str, "sha256": digest(back)}
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=os.path.dirname(mzc.__file__),
                            capture_output=True, text=True).stdout.strip()
    with open(os.path.join(HERE, "expected.json"), "w", encoding="utf-8") as fh:
        json.dump({"written_by": f"mzc {mzc.__version__} at commit {commit}", "files": expected}, fh, indent=1)
        fh.write("\n")


if __name__ == "__main__":
    main()
