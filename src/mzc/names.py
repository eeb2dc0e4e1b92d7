"""Default output names: stack.tif -> stack.mzc and back (gzip's naming, with TIFF's double suffixes)."""
from __future__ import annotations

TIFF_SUFFIXES = (".ome.tiff", ".ome.tif", ".tiff", ".tif")


def mzc_name(path: str) -> str:
    """stack.tif -> stack.mzc (an OME-TIFF loses its whole double suffix); other names get .mzc appended."""
    lower = path.lower()
    for suffix in TIFF_SUFFIXES:
        if lower.endswith(suffix):
            return path[: -len(suffix)] + ".mzc"
    return path + ".mzc"


def default_output(path: str, suffix: str) -> str:
    """The output name for `path` when none is given: `.mzc` for an encode, `suffix` (".tif") for a decode."""
    if suffix == ".mzc":
        return mzc_name(path)
    return (path[:-4] if path.lower().endswith(".mzc") else path) + suffix
