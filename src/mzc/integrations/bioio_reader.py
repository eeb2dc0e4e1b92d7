"""bioio opens .mzc files: `bioio.BioImage("x.mzc")` (entry point group `bioio.readers`; bioio finds the reader
through this module's ReaderMetadata). Data come lazily from the file's chunks (io/lazy.py); the resolution levels
are the file's pyramid (mzc's --scale rendering); physical sizes come from the source TIFF's metadata.
"""
from __future__ import annotations

from typing import Any

import xarray as xr
from bioio_base import exceptions, io, reader_metadata
from bioio_base import reader as base_reader
from bioio_base.types import PhysicalPixelSizes

from ..format.container import is_mzc
from ..io.omezarr import physical_sizes
from ..io.reader import MzcFile


class Reader(base_reader.Reader):
    """A local .mzc file as one bioio scene, with one resolution level per pyramid level."""

    def __init__(self, image: Any, fs_kwargs: dict | None = None, **kwargs: Any):
        self._fs, self._path = io.pathlike_to_fs(image, enforce_exists=True, fs_kwargs=fs_kwargs or {})
        if not self._is_supported_image(self._fs, self._path):
            raise exceptions.UnsupportedFileFormatError(type(self).__name__, self._path,
                                                        "not a local .mzc file")
        with MzcFile.open(self._path) as mz:
            self._levels, self._axes, self._meta = mz.levels, mz.axes, mz.metadata

    @staticmethod
    def _is_supported_image(fs, path: str, **kwargs: Any) -> bool:
        local = "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))
        return local and is_mzc(path)

    @property
    def scenes(self) -> tuple[str, ...]:
        return ("Image:0",)

    @property
    def resolution_levels(self) -> tuple[int, ...]:
        return tuple(range(len(self._levels)))

    def _array(self, lazy: bool) -> xr.DataArray:
        with MzcFile.open(self._path) as mz:
            scale = self._levels[self._current_resolution_level]
            data = mz.to_dask(scale) if lazy else mz.read(scale=scale)
        dims = list(self._axes)
        coords = {"C": [f"Channel:0:{i}" for i in range(data.shape[dims.index("C")])]} if "C" in dims else {}
        return xr.DataArray(data, dims=dims, coords=coords, attrs={"unprocessed": self._meta})

    def _read_delayed(self) -> xr.DataArray:
        return self._array(lazy=True)

    def _read_immediate(self) -> xr.DataArray:
        return self._array(lazy=False)

    @property
    def physical_pixel_sizes(self) -> PhysicalPixelSizes:
        sizes = physical_sizes(self._meta)
        step = 1 / self._levels[self._current_resolution_level]
        z, y, x = (sizes.get(a, (None, None))[0] for a in "ZYX")
        return PhysicalPixelSizes(z, y * step if y else None, x * step if x else None)


class ReaderMetadata(reader_metadata.ReaderMetadata):
    @staticmethod
    def get_supported_extensions() -> list[str]:
        return ["mzc"]

    @staticmethod
    def get_reader() -> type[base_reader.Reader]:
        return Reader
