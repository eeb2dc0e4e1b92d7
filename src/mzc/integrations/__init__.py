"""mzc inside other people's tools: the Zarr (numcodecs) codec."""
