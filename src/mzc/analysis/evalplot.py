"""`mzc eval --png`: one plane side by side (original, decoded, |difference|, both segmentations over the original),
so a reviewer sees where the error sits and whether the objects moved. The plane shown is the one with the most
objects in the original's segmentation (the middle plane when none has any)."""
from __future__ import annotations

import numpy as np

from ..errors import MzcError


def pick_plane(ref, channel: int | None) -> tuple[int, ...]:
    keys = list(ref.keys(channel))
    counts = [int(ref.labels(k).max()) for k in keys]
    return keys[int(np.argmax(counts))] if max(counts, default=0) > 0 else keys[len(keys) // 2]


def write_panels(path: str, ref, planes: np.ndarray, channel: int | None, result: dict) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MzcError("--png needs matplotlib (pip install matplotlib)") from None
    from skimage.segmentation import find_boundaries

    from ..io.atomic import atomic_output
    key = pick_plane(ref, channel)
    original = ref.plane(key).astype(np.float64)
    decoded = planes[key].astype(np.float64)
    ref_labels = ref.labels(key)
    test_labels = ref._segment(np.ascontiguousarray(planes[key]))
    lo, hi = np.percentile(original, [0.5, 99.5])
    hi = hi if hi > lo else lo + 1
    diff = np.abs(decoded - original)
    dmax = max(float(np.percentile(diff, 99.9)), 1.0)  # one hot pixel must not turn the panel black

    fig, axes = plt.subplots(1, 4, figsize=(16, 4.6), constrained_layout=True)
    axes[0].imshow(original, cmap="gray", vmin=lo, vmax=hi)
    axes[0].set_title("original")
    axes[1].imshow(decoded, cmap="gray", vmin=lo, vmax=hi)
    axes[1].set_title(_decoded_title(result))
    shown = axes[2].imshow(diff, cmap="magma", vmin=0, vmax=dmax)
    axes[2].set_title(f"|decoded - original| (max {diff.max():g}, scale to p99.9)", fontsize=10)
    fig.colorbar(shown, ax=axes[2], shrink=0.8)
    overlay = np.repeat(np.clip((original - lo) / (hi - lo), 0, 1)[..., None], 3, axis=2)
    edge_ref, edge_test = find_boundaries(ref_labels, mode="inner"), find_boundaries(test_labels, mode="inner")
    overlay[edge_ref] = (0.1, 0.9, 0.1)
    overlay[edge_test] = (0.95, 0.1, 0.95)
    overlay[edge_ref & edge_test] = (1.0, 1.0, 1.0)
    axes[3].imshow(overlay)
    axes[3].set_title(_segmentation_title(result), fontsize=10)
    for ax in axes:
        ax.set_axis_off()
    where = f"  plane {dict(zip(ref.plane_axes, key))}" if key else ""
    fig.suptitle(f"{result['original']}{where}", fontsize=9)
    with atomic_output(path) as fh:
        fig.savefig(fh, format="png", dpi=100)
    plt.close(fig)


def _decoded_title(result: dict) -> str:
    parts = ["decoded"]
    if "codec" in result:
        parts.append(str(result["codec"]))
    if "ratio" in result:
        parts.append(f"{result['ratio']:.1f}x")
    return " ".join(parts)


def _segmentation_title(result: dict) -> str:
    seg = result.get("segmentation")
    text = "original green, decoded magenta, both white"
    return text + (f"\nF1 {seg['f1']:.3f}, mean IoU {seg['mean_iou']}" if seg else "")
