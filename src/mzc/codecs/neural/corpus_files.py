"""The TIFF files a training corpus folder holds, found without PyTorch: `mzc train` on a wrong folder should say
so at once, not after the seconds torch takes to import."""
from __future__ import annotations

import glob
import os

from ...errors import MzcError


def tiff_paths(folders) -> list[str]:
    paths = []
    for folder in folders:
        if not os.path.isdir(folder):
            raise MzcError(f"{folder}: no such folder")
        found = sorted(p for ext in ("tif", "tiff") for p in glob.glob(os.path.join(folder, "**", f"*.{ext}"),
                                                                       recursive=True))
        if not found:
            raise MzcError(f"{folder}: no .tif/.tiff files to train on")
        paths += found
    return paths
