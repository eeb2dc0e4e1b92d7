"""`mzc eval`: does the analysis still give the same answer on the decoded data?

Tasks, each run on every 2-D (Y, X) plane of the selected channels and pooled over planes:
- segmentation: objects segmented in the original and in the decoded data, matched one to one at IoU >= 0.5
  (F1, precision, recall, mean matched IoU) and paired tests on the matched objects' shape features;
- intensity: each object of the original's segmentation measured in both (integrated intensity agreement);
- ratiometric: ratio maps of two channels compared (SSIM, PSNR, Pearson r).
The original's side is computed once (`Reference`), so a benchmark can evaluate many decodings of one file cheaply."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from ..errors import MzcError
from . import TASKS
from .objects import SHAPE_FEATURES, integrated_intensity, intensity_agreement, paired_test, shape_features
from .ratiometric import RatioAgreement
from .segmentation import match
from .segmenters import get as get_segmenter


def plane_layout(axes: str, shape: tuple[int, ...]) -> tuple[list[int], int | None]:
    """Axis order that puts (Y, X) last, and the position of the channel axis (C, or S for RGB) among the others."""
    if "Y" not in axes or "X" not in axes:
        raise MzcError(f"eval needs Y and X axes; this file has axes {axes}")
    others = [i for i, a in enumerate(axes) if a not in "YX"]
    channel = next((k for k, i in enumerate(others) if axes[i] in "CS"), None)
    return others + [axes.index("Y"), axes.index("X")], channel


@dataclass
class Reference:
    """The original data and everything computed from it once: plane labels and their shape features."""
    array: np.ndarray
    axes: str
    segmenter: str = "classic"
    _planes: np.ndarray = field(init=False, repr=False)
    _channel_pos: int | None = field(init=False, repr=False)
    _labels: dict = field(default_factory=dict, repr=False)
    _features: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        order, self._channel_pos = plane_layout(self.axes, self.array.shape)
        self.plane_axes = "".join(self.axes[i] for i in order[:-2])
        self._planes = np.transpose(self.array, order)
        self._segment = get_segmenter(self.segmenter)

    @property
    def n_channels(self) -> int:
        return 1 if self._channel_pos is None else self._planes.shape[self._channel_pos]

    def planes_of(self, array: np.ndarray) -> np.ndarray:
        order, _ = plane_layout(self.axes, self.array.shape)
        return np.transpose(array, order)

    def keys(self, channel: int | None = None) -> Iterator[tuple[int, ...]]:
        """Plane indices (over every axis but Y, X), optionally of one channel."""
        self._check_channel(channel)
        for key in np.ndindex(self._planes.shape[:-2]):
            if channel is None or self._channel_pos is None or key[self._channel_pos] == channel:
                yield key

    def plane(self, key: tuple[int, ...]) -> np.ndarray:
        return self._planes[key]

    def labels(self, key: tuple[int, ...]) -> np.ndarray:
        if key not in self._labels:
            self._labels[key] = self._segment(np.ascontiguousarray(self._planes[key]))
        return self._labels[key]

    def features(self, key: tuple[int, ...]) -> dict:
        if key not in self._features:
            self._features[key] = shape_features(self.labels(key))
        return self._features[key]

    def with_channel(self, key: tuple[int, ...], channel: int) -> tuple[int, ...]:
        k = list(key)
        k[self._channel_pos] = channel
        return tuple(k)

    def _check_channel(self, channel: int | None) -> None:
        if channel is not None and not 0 <= channel < self.n_channels:
            raise MzcError(f"channel {channel} does not exist: the file has {self.n_channels} channel(s)")


def compare(ref: Reference, decoded: np.ndarray, tasks=("segmentation",), channel: int | None = None,
            ratio_channels: tuple[int, int] = (0, 1)) -> dict:
    """Run `tasks` on (original, decoded); returns one report dict per task."""
    if decoded.shape != ref.array.shape:
        raise MzcError(f"decoded shape {decoded.shape} differs from the original's {ref.array.shape}")
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise MzcError(f"unknown task {unknown[0]!r}: choose from {', '.join(TASKS)}")
    planes = ref.planes_of(decoded)
    out = {}
    if "segmentation" in tasks:
        out["segmentation"] = segmentation_agreement(ref, planes, channel)
    if "intensity" in tasks:
        out["intensity"] = intensity_report(ref, planes, channel)
    if "ratiometric" in tasks:
        out["ratiometric"] = ratio_report(ref, planes, ratio_channels)
    return out


def segmentation_agreement(ref: Reference, planes: np.ndarray, channel: int | None) -> dict:
    tp = n_ref = n_test = 0
    ious, feats = [], {name: ([], []) for name in SHAPE_FEATURES}
    n_planes = 0
    for key in ref.keys(channel):
        n_planes += 1
        ref_labels = ref.labels(key)
        test_labels = ref._segment(np.ascontiguousarray(planes[key]))
        m = match(ref_labels, test_labels)
        tp += m.pairs.shape[1]
        n_ref += m.n_ref
        n_test += m.n_test
        ious.append(m.ious)
        if m.pairs.shape[1]:
            fr, ft = ref.features(key), shape_features(test_labels)
            for name in SHAPE_FEATURES:
                feats[name][0].append(fr[name][m.pairs[0]])
                feats[name][1].append(ft[name][m.pairs[1]])
    precision = tp / n_test if n_test else 1.0
    recall = tp / n_ref if n_ref else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    all_iou = np.concatenate(ious) if ious else np.zeros(0)
    tests = {name: paired_test(np.concatenate(r) if r else np.zeros(0), np.concatenate(t) if t else np.zeros(0))
             for name, (r, t) in feats.items()}
    return {"f1": round(f1, 6), "precision": round(precision, 6), "recall": round(recall, 6),
            "mean_iou": round(float(all_iou.mean()), 6) if all_iou.size else None,
            "n_objects_ref": n_ref, "n_objects_test": n_test, "n_matched": tp, "planes": n_planes,
            "segmenter": ref.segmenter, "shape_tests": tests}


def intensity_report(ref: Reference, planes: np.ndarray, channel: int | None) -> dict:
    """Integrated intensity of every object of the original's segmentation, measured in both images."""
    a, b = [], []
    for key in ref.keys(channel):
        labels = ref.labels(key)
        a.append(integrated_intensity(labels, ref.plane(key)))
        b.append(integrated_intensity(labels, planes[key]))
    return intensity_agreement(np.concatenate(a) if a else np.zeros(0), np.concatenate(b) if b else np.zeros(0))


def ratio_report(ref: Reference, planes: np.ndarray, channels: tuple[int, int]) -> dict:
    num, den = channels
    if ref._channel_pos is None or ref.n_channels < 2:
        raise MzcError("--task ratiometric needs a file with a channel axis of >= 2 channels")
    if num == den:
        raise MzcError("--channels: numerator and denominator must be different channels")
    for c in channels:
        ref._check_channel(c)
    agreement = RatioAgreement()
    for key in ref.keys(num):
        other = ref.with_channel(key, den)
        agreement.add((ref.plane(key), ref.plane(other)), (planes[key], planes[other]))
    return agreement.report() | {"channels": [num, den]}


def load_original(path: str) -> tuple[np.ndarray, str]:
    from ..io.tiff import open_tiff
    vol = open_tiff(path)
    try:
        return vol.block(tuple(slice(None) for _ in vol.shape)), vol.axes
    finally:
        vol.close()


def load_decoded(path: str, workers: int = 1) -> tuple[np.ndarray, dict | None]:
    """A .mzc file (decoded here; its stored report comes along) or any TIFF another tool decoded."""
    from ..api import open as open_mzc
    from ..format.container import is_mzc
    if is_mzc(path):
        with open_mzc(path) as mz:
            return mz.read(workers=workers), mz.report
    return load_original(path)[0], None


def evaluate(original: str, decoded: str, tasks=("segmentation",), channel: int | None = None,
             ratio_channels: tuple[int, int] = (0, 1), segmenter: str = "classic", png: str | None = None,
             workers: int = 1, progress=None) -> dict:
    """Compare the analysis of `original` (TIFF) with that of `decoded` (.mzc or TIFF); optionally write a PNG.
    `progress(done, total)` follows the planes segmented."""
    array, axes = load_original(original)
    back, report = load_decoded(decoded, workers)
    ref = Reference(array, axes, segmenter)
    if progress is not None:
        count_segmentations(ref, len(list(ref.keys(channel))) * (1 + ("segmentation" in tasks)), progress)
    result = {"original": original, "input": decoded, "shape": list(array.shape), "axes": axes}
    if report:
        result |= {k: report[k] for k in ("codec", "ratio", "psnr_db") if k in report}
    result |= compare(ref, back, tasks, channel, ratio_channels)
    if png is not None:
        from .evalplot import write_panels
        write_panels(png, ref, ref.planes_of(back), channel, result)
    return result


def count_segmentations(ref: Reference, total: int, progress) -> None:
    """Report each plane segmented (original and decoded alike) to `progress(done, total)`."""
    segment, done = ref._segment, [0]

    def counted(plane):
        labels = segment(plane)
        done[0] += 1
        progress(min(done[0], total), total)
        return labels

    ref._segment = counted
