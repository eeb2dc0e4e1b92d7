"""TIFF / OME-TIFF / ImageJ-TIFF in and out with tifffile: the array is read lazily, metadata carried verbatim.

What is kept is what Fiji and tifffile need to read the decoded file as they read the original: the first page's
ImageDescription (OME-XML, ImageJ or tifffile's shaped JSON), resolution tags, photometric/planar layout and ImageJ's
private IJMetadata tags, byte for byte.
"""
from __future__ import annotations

import itertools
import mmap
import os
import struct
from dataclasses import dataclass, field
from typing import BinaryIO, Iterator

import numpy as np
import tifffile

from ..errors import MzcError
from .tiffmeta import check_metadata

SUPPORTED_DTYPES = ("|u1", "<u2", "<i2", "<u4", "<f4")
RELEASE_EVERY = 64 << 20  # bytes read from a memmap between releases of its pages
KEPT_EXTRATAGS = (50838, 50839)  # ImageJ IJMetadataByteCounts / IJMetadata
RAW_TAG_TYPES = (1, 2, 7)  # BYTE, ASCII, UNDEFINED: kept as raw bytes


def normalise_dtype(dtype: np.dtype) -> np.dtype:
    dtype = np.dtype(dtype).newbyteorder("<") if np.dtype(dtype).itemsize > 1 else np.dtype(dtype)
    if dtype.str not in SUPPORTED_DTYPES:
        raise MzcError(f"unsupported dtype {np.dtype(dtype).name}: mzc takes uint8, uint16, int16, uint32, float32")
    return dtype


@dataclass
class Volume:
    """A TIFF opened for reading; `block(slices)` returns one chunk as a little-endian array."""
    shape: tuple[int, ...]
    dtype: np.dtype
    axes: str
    metadata: dict
    _array: np.ndarray = field(repr=False)
    _keep: list = field(default_factory=list, repr=False)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * self.dtype.itemsize

    _since_release: int = field(default=0, repr=False)

    def block(self, slices: tuple[slice, ...]) -> np.ndarray:
        out = np.array(self._array[slices], dtype=self.dtype, order="C")
        self._since_release += out.nbytes
        if self._since_release > RELEASE_EVERY:
            self.release()
        return out

    def release(self) -> None:
        """Drop the pages of a memory-mapped input from this process's resident set.

        Pages a memmap has touched stay mapped (and counted in RSS) until unmapped, so a 4 GB stack read through a
        memmap would end with a 4 GB RSS; read-only file pages can be dropped and re-read from the page cache.
        """
        self._since_release = 0
        base = self._array
        while base is not None and not isinstance(base, mmap.mmap):
            base = getattr(base, "base", None)
        if base is not None and hasattr(base, "madvise"):
            base.madvise(mmap.MADV_DONTNEED)

    def close(self) -> None:
        for item in self._keep:
            item.close()
        self._keep.clear()


def _tiff_metadata(tif: tifffile.TiffFile) -> dict:
    page = tif.pages.first
    kind = "ome" if tif.is_ome else "imagej" if tif.is_imagej else "shaped" if tif.is_shaped else "plain"
    meta: dict = {"kind": kind}
    tags = page.tags
    for code, key in ((270, "description"), (305, "software"), (306, "datetime")):
        tag = tags.get(code)
        if tag is not None and isinstance(tag.value, str):
            meta[key] = tag.value
    for code, key in ((262, "photometric"), (284, "planarconfig"), (296, "resolutionunit")):
        tag = tags.get(code)
        if tag is not None:
            meta[key] = int(tag.value)
    xres, yres = tags.get(282), tags.get(283)
    if xres is not None and yres is not None:
        meta["resolution"] = [list(map(int, xres.value)), list(map(int, yres.value))]
        meta.setdefault("resolutionunit", 2)  # TIFF's default unit (inch) when the tag is absent
    colormap = tags.get(320)
    if colormap is not None:
        meta["colormap"] = [int(v) for v in np.asarray(colormap.value).ravel()]
    extrasamples = tags.get(338)
    if extrasamples is not None:
        value = extrasamples.value
        meta["extrasamples"] = [int(v) for v in (value if isinstance(value, tuple) else (value,))]
    extratags = []
    for code in KEPT_EXTRATAGS:
        tag = tags.get(code)
        if tag is None:
            continue
        if tag.dtype in RAW_TAG_TYPES:
            tif.filehandle.seek(tag.valueoffset)
            value = tif.filehandle.read(tag.valuebytecount)
        else:
            value = list(tag.value) if isinstance(tag.value, tuple) else [tag.value]
        extratags.append([code, int(tag.dtype), int(tag.count), value])
    if extratags:
        meta["extratags"] = extratags
    return meta


def _check_complete(tif: tifffile.TiffFile, series, size: int) -> None:
    """A truncated TIFF must be an error, not zeros: every strip/tile of the series must lie inside the file."""
    for page in series.pages:
        if page is None:
            raise MzcError("truncated or damaged TIFF: a page of the image series is missing")
        offsets, counts = page.dataoffsets, page.databytecounts
        if not offsets or max(o + c for o, c in zip(offsets, counts)) > size or 0 in counts:
            raise MzcError("truncated TIFF: image data extends past the end of the file")


class PagedArray:
    """Read-only array view of a series whose pages are its planes: indexing decodes only the pages it touches.

    For compressed or scattered TIFFs (no memmap possible), this keeps memory at one decoded page instead of the
    whole stack; the last page is cached because a plane's tiles are read one after another.
    """

    def __init__(self, pages, shape: tuple[int, ...], page_start: int):
        self._pages, self.shape, self._start = pages, shape, page_start
        self._cached: tuple[int, np.ndarray] | None = None

    def _page(self, k: int) -> np.ndarray:
        if self._cached is None or self._cached[0] != k:
            self._cached = (k, self._pages[k].asarray().reshape(self.shape[self._start:]))
        return self._cached[1]

    def __getitem__(self, slices: tuple[slice, ...]) -> np.ndarray:
        lead, inner = slices[:self._start], slices[self._start:]
        lead_ranges = [range(*s.indices(n)) for s, n in zip(lead, self.shape)]
        planes = [self._page(int(np.ravel_multi_index(idx, self.shape[:self._start]) if idx else 0))[inner]
                  for idx in itertools.product(*lead_ranges)]
        return np.stack(planes).reshape([len(r) for r in lead_ranges] + list(planes[0].shape))


def _paged(series, shape: tuple[int, ...], axes: str, metadata: dict) -> PagedArray | None:
    start = page_axes_start(shape, axes, metadata)
    pages = series.pages
    if len(pages) != int(np.prod(shape[:start])) or any(p is None for p in pages):
        return None
    first = pages[0]
    if int(np.prod(first.shape)) != int(np.prod(shape[start:])):
        return None
    return PagedArray(pages, shape, start)


def open_tiff(source: str | BinaryIO) -> Volume:
    """Open a TIFF for chunked reading: memory-mapped when the data are contiguous, else page by page."""
    keep: list = []
    try:
        tif = tifffile.TiffFile(source)
    except (tifffile.TiffFileError, ValueError, struct.error, IndexError) as exc:
        raise MzcError(f"not a TIFF file or damaged TIFF ({exc})") from None
    keep.append(tif)
    try:
        if not tif.series:
            raise MzcError("TIFF contains no image series")
        if len(tif.series) > 1:  # pyramid levels and thumbnails are not separate series in tifffile
            shapes = ", ".join(str(tuple(s.shape)) for s in tif.series[:4])
            raise MzcError(f"TIFF holds {len(tif.series)} image series ({shapes}...): mzc codes one series per file, "
                           "and would silently drop the others; split the file first")
        series = tif.series[0]
        shape, axes = tuple(int(n) for n in series.shape), series.axes
        if any(n == 0 for n in shape) or not shape:
            raise MzcError(f"zero-sized axis in TIFF shape {shape}")
        if len(shape) < 2:
            raise MzcError(f"TIFF image has fewer than two axes {shape}")
        dtype = normalise_dtype(series.dtype)
        tif.filehandle.seek(0, os.SEEK_END)
        _check_complete(tif, series, tif.filehandle.tell())
        array = None
        if isinstance(source, (str, os.PathLike)) and series.dataoffset is not None:
            try:
                array = tifffile.memmap(source, series=0, mode="r")
            except (ValueError, OSError):
                array = None
        metadata = _tiff_metadata(tif)
        if array is None:
            array = _paged(series, shape, axes, metadata)
        if array is None:  # pages that are not planes: decode the series whole (into a temp memmap when large)
            array = series.asarray(out="memmap" if np.prod(shape) * dtype.itemsize > (256 << 20) else None)
        if tuple(array.shape) != shape:
            array = array.reshape(shape)
        return Volume(shape, dtype, axes, metadata, array, keep)
    except MzcError:
        for item in keep:
            item.close()
        raise
    except Exception as exc:  # noqa: BLE001 - tifffile raises many kinds on damaged files
        for item in keep:
            item.close()
        raise MzcError(f"cannot read TIFF ({type(exc).__name__}: {exc})") from None


def page_axes_start(shape: tuple[int, ...], axes: str, metadata: dict) -> int:
    """Index of the first axis of one TIFF page (Y, or S for planar-separate RGB)."""
    y = axes.index("Y") if "Y" in axes else len(shape) - 2
    if metadata.get("planarconfig") == 2 and y > 0 and axes[y - 1] == "S":
        return y - 1
    return y


def write_tiff(target: str | BinaryIO, shape: tuple[int, ...], dtype: np.dtype, axes: str, metadata: dict,
               pages: Iterator[np.ndarray]) -> None:
    """Write pages (streamed) with the original TIFF metadata; BigTIFF when the data need it."""
    if not isinstance(metadata, dict):
        raise MzcError("corrupt header: TIFF metadata is not a map")
    check_metadata(metadata)
    try:
        _write_tiff(target, shape, dtype, axes, metadata, pages)
    except MzcError:
        raise
    except (TypeError, ValueError, OverflowError, KeyError, AttributeError, IndexError, ZeroDivisionError,
            struct.error) as exc:  # hostile stored metadata that check_metadata let through
        raise MzcError(f"cannot write the TIFF with the stored metadata ({type(exc).__name__}: {exc})") from None


def _write_tiff(target: str | BinaryIO, shape: tuple[int, ...], dtype: np.dtype, axes: str, metadata: dict,
               pages: Iterator[np.ndarray]) -> None:
    """write_tiff without the error translation."""
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    kwargs: dict = {"metadata": None}
    if "description" in metadata:
        kwargs["description"] = metadata["description"]
    if "photometric" in metadata:
        kwargs["photometric"] = metadata["photometric"]
    else:
        kwargs["photometric"] = "minisblack"
    if metadata.get("planarconfig") and "S" in axes:
        kwargs["planarconfig"] = metadata["planarconfig"]
    if "resolution" in metadata:
        (xn, xd), (yn, yd) = metadata["resolution"]
        kwargs["resolution"] = ((xn, xd), (yn, yd))
        kwargs["resolutionunit"] = metadata.get("resolutionunit", 1)
    kwargs["software"] = metadata.get("software", False)
    if "colormap" in metadata:
        kwargs["colormap"] = np.asarray(metadata["colormap"], np.uint16).reshape(3, -1)
    if "extrasamples" in metadata:
        kwargs["extrasamples"] = metadata["extrasamples"]
    if "datetime" in metadata:
        kwargs["datetime"] = metadata["datetime"]
    extratags = []
    for code, tdtype, count, value in metadata.get("extratags", []):
        if tdtype in RAW_TAG_TYPES:
            extratags.append((code, tdtype, count, bytes(value), True))
        else:
            extratags.append((code, tdtype, count, tuple(value), True))
    kwargs["extratags"] = extratags
    with tifffile.TiffWriter(target, bigtiff=nbytes > (1 << 32) - (1 << 25)) as tw:
        tw.write(pages, shape=shape, dtype=dtype, **kwargs)
