"""Write the golden files of the image back ends added by issue 20 (context coder, JPEG 2000 / HTJ2K reversible,
JPEG XL, JPEG-LS through the back-end choice) and their expected decodes.

They guard spec 6.5 and the new `p.b` values: tests/test_backends.py checks that every file keeps decoding to the
array recorded in expected.json. Each `lossless_*` file was written with the back-end list pinned to one back end,
so each back end has a file of its own. Do not regenerate them unless the format changes (a new major version).

    python testdata/golden_ctx/make_golden_ctx.py
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile

import numpy as np
import tifffile

HERE = os.path.dirname(os.path.abspath(__file__))
TESTDATA = os.path.dirname(HERE)


def digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()).hexdigest()


def sources(folder: str) -> dict[str, str]:
    """Small crops of the synthetic samples: a 16-bit plane pair and an 8-bit movie."""
    nuclei = tifffile.imread(os.path.join(TESTDATA, "nuclei2d_u16.tif"))
    movie = tifffile.imread(os.path.join(TESTDATA, "timelapse_u8.tif"))
    paths = {"u16": os.path.join(folder, "u16.tif"), "u8": os.path.join(folder, "u8.tif")}
    tifffile.imwrite(paths["u16"], np.stack([nuclei[:72, :96], nuclei[72:144, 96:192]]), metadata={"axes": "ZYX"},
                     photometric="minisblack")
    tifffile.imwrite(paths["u8"], movie.reshape(-1, *movie.shape[-2:])[:2, :48, :64], metadata={"axes": "TYX"},
                     photometric="minisblack")
    return paths


def main() -> None:
    import mzc
    from mzc.codecs import backends
    expected = {}
    with tempfile.TemporaryDirectory() as tmp:
        src = sources(tmp)
        jobs = [(f"lossless_{name}_{depth}", src[depth], {}, name) for name in sorted(backends.NAMES)
                for depth in ("u16", "u8")]
        jobs += [("noise_k1_ctx", src["u16"], {"noise": 1.0}, "ctx"),
                 ("bounded_j2k_ctx", src["u16"], {"codec": "j2k", "max_error": 8}, "ctx")]
        fast = backends.EFFORTS["fast"]
        for name, path, options, only in jobs:
            backends.EFFORTS["fast"] = (only,)
            try:
                out = os.path.join(HERE, f"{name}.mzc")
                if os.path.exists(out):
                    os.remove(out)
                mzc.encode(path, out, **options)
            finally:
                backends.EFFORTS["fast"] = fast
            with mzc.open(out) as mz:
                back = mz.read()
            expected[name] = {"shape": list(back.shape), "dtype": back.dtype.str, "sha256": digest(back),
                              "back_end": only}
    with open(os.path.join(HERE, "expected.json"), "w") as fh:
        json.dump({"written_by": f"mzc {mzc.__version__} (issue 20)", "files": expected}, fh, indent=1)


if __name__ == "__main__":
    main()
