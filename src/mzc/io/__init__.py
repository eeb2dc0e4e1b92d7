"""Files in and out: TIFF/OME-TIFF (tifffile), .mzc reading, OME-Zarr export, atomic writes."""
