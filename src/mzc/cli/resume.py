"""A rerun of an interrupted batch finishes it: what to do with an output that an earlier run already wrote.

Facilities run `mzc encode -r DIR --rm` from cron or a scheduler; a run that was killed must be rerun as it was and
end with every input replaced by a verified output. An existing output is judged against the input it would be
made from: done (a complete file, every chunk decodes to its digest, the input measures as the file promises and
it was made with these settings; under --rm the input then goes), redo (an mzc file that is damaged: truncated,
a bad checksum), or keep (anything else -- another image's file, other settings, not an mzc file at all: the user's
file is never replaced without -f).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..errors import MzcError

DONE, REDO, KEEP = "done", "redo", "keep"


@dataclass(frozen=True)
class Verdict:
    kind: str  # DONE, REDO or KEEP
    reason: str


def judge(inp: str, target: str, options: dict) -> Verdict:
    """What a resumed batch does with `target`, which exists, for `inp` encoded with `options`."""
    from .. import api
    from ..format.container import is_mzc
    try:
        with open(target, "rb") as fh:
            ours = is_mzc(fh)
    except OSError as exc:
        return Verdict(KEEP, f"cannot be read ({exc.strerror or exc})")
    if not ours:
        return Verdict(KEEP, "it is not an .mzc file")
    try:
        info = api.info(target)
        result = api.verify(target, against=inp)
    except MzcError as exc:
        return Verdict(REDO, f"it is damaged ({exc})")
    if result["damaged"]:
        return Verdict(REDO, f"it is damaged ({result['errors'][0]})")
    if not result["ok"]:
        return Verdict(KEEP, f"it is not this input's encoding ({result['errors'][0]})")
    differs = settings_differ(info, result, options)
    if differs:
        return Verdict(KEEP, f"it was made with other settings ({differs})")
    return Verdict(DONE, "verified against its input")


def settings_differ(info: dict, measured: dict, options: dict) -> str | None:
    """Why a file that holds this input was not made with these options (None: it was, as far as the file says)."""
    from ..codecs import registry
    from ..codecs.base import Exact
    from ..targets import parse_quality
    report = info.get("report") or {}
    bound = info.get("bound")
    quality, max_error, noise = options.get("quality"), options.get("max_error"), options.get("noise")
    if quality is not None and report.get("target") != str(parse_quality(quality)):
        return f"-q {report.get('target') or 'none'}"
    if max_error is not None:
        want = max_error
        if np.issubdtype(np.dtype(info["dtype"]), np.integer):
            want = int(min(max_error, np.iinfo(np.dtype(info["dtype"])).max))
        got = re.fullmatch(r"\|error\| <= ([-+0-9.eE]+)", bound or "")
        if got is None or float(got.group(1)) != float(want):
            return bound or "no error bound"
    elif noise is not None:
        if bound != f"|error| <= {noise:g} sigma(x)":
            return bound or "no error bound"
    elif bound is not None:
        return bound
    codec = options.get("codec") or registry.AUTO
    exact_id = registry.role(Exact).id
    lossless = options.get("lossless") or (quality is None and max_error is None and noise is None
                                           and codec in (registry.AUTO, exact_id))
    if lossless and measured.get("max_abs_error") != 0:
        target = report.get("target")
        return f"-q {target}" if target else f"lossy {info['codec'].get('id')}, not bit-exact"
    if max_error is None and noise is None and codec != registry.AUTO \
            and info["codec"].get("id") != codec.partition(":")[0]:
        return f"codec {info['codec'].get('id')}"
    return None
