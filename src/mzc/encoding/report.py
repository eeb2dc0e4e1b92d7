"""The encode report (DESIGN section 4): what was coded, how small, and what it cost in fidelity.

The file stores it without timings (`stored_report`), so the same input and options give byte-identical files
wherever and however often they are encoded, as `gzip -n` does; the report returned and printed has them. The
stored record also leaves out what the header and the file's size say (format/report.py).
"""
from __future__ import annotations

import math

from ..bounds.bound import Bound
from ..codecs.base import Exact
from ..format.container import pack_msg
from ..format.report import compact, without_bytes
from ..metrics import Fidelity

VOLATILE_REPORT_KEYS = ("encode_seconds",)
FIDELITY_KEYS = ("psnr_db", "psnr_dtype_db", "ssim", "max_abs_error", "pearson_r")


def stored_report(report: dict) -> dict:
    """What the file's report record holds (format/report.py): no timings, nothing the header or size says."""
    return compact(report, VOLATILE_REPORT_KEYS)


def build_report(job, codec, fid: Fidelity | None, seconds: float, size: int, checked: bool) -> dict:
    """The report of `job` (a FileEncoder) coded with `codec` into a file of `size` bytes."""
    vol = job.vol
    exact = isinstance(codec, Exact)
    rep = {
        "input": job.source_name, "codec": codec.id,
        "codec_config": without_bytes(codec.config()),
        "shape": list(vol.shape), "dtype": vol.dtype.name, "axes": vol.axes,
        "bytes_in": vol.nbytes, "bytes_out": size,
        "ratio": round(vol.nbytes / size, 4),
        "bpp": round(size * 8 / math.prod(vol.shape), 6),
        "data_range": [job.stats.min, job.stats.max],
    }
    fid = fid or Fidelity(job.stats.range, vol.dtype.str)
    if checked or exact:
        rep.update({k: v for k, v in fid.report().items() if k != "mse"})
    else:  # --no-check on a lossy codec: nothing was decoded, so nothing is claimed
        rep.update(dict.fromkeys(FIDELITY_KEYS))
    rep.update(bound_facts(job.bound))
    if job.bound is not None and job.bound.models and (checked or exact):
        rep["max_error_sigma"] = round(fid.max_sigma, 4)  # largest |error| / sigma(original) over all pixels
    rep["target"] = str(job.plan.target) if job.plan.target else None
    rep["checked"] = checked  # False: a lossless encode trusted its codec instead of decoding every chunk back
    rep["encode_seconds"] = round(seconds, 3)
    return rep


def bound_facts(bound: Bound | None) -> dict:
    """What a bounded file promises, for the header and the report: the bound, the noise model per channel."""
    if bound is None:
        return {}
    facts = {"bound": bound.describe()}
    if bound.models:
        facts["noise"] = {"k": bound.k, "models": [m.as_dict() for m in bound.models]}
    return facts


def report_bytes(report: dict) -> int:
    """Size of the report record's payload, from a report of this file with the widest values it can hold
    (a budget-sized codec at 512x has ~4 KB for everything: a fixed guess would cost it a few percent)."""
    wide = dict(report, encode_seconds=99999.999, bytes_out=1 << 40, ratio=1.0 / 3, bpp=1.0 / 3,
                psnr_db=1.0 / 3, psnr_dtype_db=1.0 / 3, ssim=1.0 / 3, pearson_r=1.0 / 3, max_abs_error=1 << 40)
    return len(pack_msg(stored_report(wide))) + 16
