"""Regenerate the synthetic samples in testdata/ (deterministic; run from anywhere).

nuclei2d_u16.tif   256x256 12-bit widefield-like nuclei with Poisson-Gaussian noise (plain tifffile 'shaped' TIFF)
stack3d_u16.ome.tif 8x2x96x128 ZCYX OME-TIFF, blobs in 3D, 12-bit, with physical pixel sizes
timelapse_u8.tif   5x3x64x80 TZYX... stored as an ImageJ hyperstack (T, Z, Y, X) with spacing and units
"""
from __future__ import annotations

import os

import numpy as np
import tifffile

HERE = os.path.dirname(os.path.abspath(__file__))


def blobs(shape, n, radius, rng):
    grids = np.meshgrid(*[np.arange(s, dtype=np.float32) for s in shape], indexing="ij")
    img = np.zeros(shape, np.float32)
    for _ in range(n):
        centre = [rng.uniform(0, s) for s in shape]
        r = rng.uniform(0.6, 1.4) * radius
        d2 = sum((g - c) ** 2 for g, c in zip(grids, centre))
        img += rng.uniform(0.5, 1.0) * np.exp(-d2 / (2 * r * r)) ** 0.35 * (d2 < (2.2 * r) ** 2)
    return img


def noisy(signal, gain, offset, read_sigma, rng, maxval):
    photons = rng.poisson(np.clip(signal, 0, None) / gain) * gain
    return np.clip(np.rint(photons + offset + rng.normal(0, read_sigma, signal.shape)), 0, maxval)


def main():
    rng = np.random.default_rng(20261122)
    nuclei = noisy(200 + 2600 * blobs((256, 256), 14, 14, rng), 2.0, 100, 6.0, rng, 4095).astype(np.uint16)
    tifffile.imwrite(os.path.join(HERE, "nuclei2d_u16.tif"), nuclei, metadata={"axes": "YX"},
                     resolution=(1 / 0.65, 1 / 0.65))
    vol = np.stack([300 + 3000 * blobs((8, 96, 128), 10, 9, rng), 250 + 900 * blobs((8, 96, 128), 25, 5, rng)], axis=1)
    vol = noisy(vol, 1.5, 90, 5.0, rng, 4095).astype(np.uint16)
    tifffile.imwrite(os.path.join(HERE, "stack3d_u16.ome.tif"), vol, ome=True,
                     metadata={"axes": "ZCYX", "PhysicalSizeX": 0.325, "PhysicalSizeY": 0.325, "PhysicalSizeZ": 1.5,
                               "Channel": {"Name": ["nuclei", "membrane"]}})
    frames = np.stack([30 + 180 * blobs((3, 64, 80), 6, 7, rng) for _ in range(5)])
    frames = noisy(frames, 1.0, 10, 3.0, rng, 255).astype(np.uint8)
    tifffile.imwrite(os.path.join(HERE, "timelapse_u8.tif"), frames, imagej=True, resolution=(2.0, 2.0),
                     metadata={"axes": "TZYX", "spacing": 2.0, "unit": "um", "finterval": 7.0})


if __name__ == "__main__":
    main()
