"""Model files: resumable training checkpoints and the small frozen files the zoo ships.

A checkpoint holds the weights, both optimizers, the scheduler, the iteration count and where the data came from.
A frozen file holds only fp16-rounded weights and the CDF tables computed from exactly those weights, so the encoder
and every decoder run the same numbers; its sha256 is what a .mzc file records.
"""
from __future__ import annotations

import io
import os

import torch

from ...errors import MzcError
from .zoo import VARIABLE_RATE_FAMILIES

FORMAT = "mzc-model-1"


def is_variable_rate(arch: str) -> bool:
    return arch in VARIABLE_RATE_FAMILIES


def variable_rate_class(arch: str):
    """The class of a variable-rate family: gain units over an autoencoder, or the learned wavelet."""
    if arch == "wavelet-vr":
        from .lifting import LiftingVR
        return LiftingVR
    from .gained import GAINED
    return GAINED[arch]


def build_model(arch: str, n: int, m: int, lambda_range=None):
    """A fresh network of family `arch`: variable-rate (gained.py) or fixed-rate CompressAI (architectures.py)."""
    if is_variable_rate(arch):
        cls = variable_rate_class(arch)
        return cls(n, m, lambdas=tuple(lambda_range)) if lambda_range else cls(n, m)
    from .architectures import build
    return build(arch, n, m)


def atomic_save(obj, path: str) -> None:
    buf = io.BytesIO()
    torch.save(obj, buf)
    tmp = f"{path}.part"
    try:
        with open(tmp, "wb") as fh:
            fh.write(buf.getvalue())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read(source, path: str | None = None) -> dict:
    """A model file's contents (`source`: a path or a binary file object; `path` names it in errors)."""
    path = path or str(source)
    try:
        blob = torch.load(source, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise MzcError(f"{path}: no such model file") from None
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a damaged or foreign file
        raise MzcError(f"{path}: not an mzc model file ({type(exc).__name__})") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise MzcError(f"{path}: not an mzc model file")
    return blob


def net_from(blob: dict, path: str = "model"):
    """Rebuild the network a model file describes and load its weights (CDF buffers included)."""
    try:
        net = build_model(blob["arch"], int(blob["N"]), int(blob["M"]), blob.get("lambda_range"))
        state = {k: v.float() if v.is_floating_point() else v for k, v in blob["state_dict"].items()}
        net.load_state_dict(state)
    except MzcError:
        raise
    except Exception as exc:  # noqa: BLE001 - load_state_dict raises several kinds for foreign weights
        raise MzcError(f"{path}: weights do not fit {blob.get('arch')} ({exc})") from None
    return net.eval().requires_grad_(False)


def lineage(start: dict) -> dict:
    """What a run started from `start`'s weights inherits: its steps, device seconds and validation history, added
    to those `start` itself inherited (history times made cumulative), so a model's manifest counts every step."""
    prior = start.get("inherited") or {}
    seconds = dict(prior.get("device_seconds") or {})
    offset = seconds.get("cpu", 0.0) + seconds.get("gpu", 0.0)
    for device, value in (start.get("device_seconds") or {}).items():
        seconds[device] = seconds.get(device, 0.0) + float(value)
    history = list(prior.get("history") or [])
    for h in start.get("history") or []:
        h = {k: h[k] for k in ("it", "points", "seconds", "cpu_seconds", "device") if k in h}
        h["cpu_seconds"] = h.get("cpu_seconds", h.get("seconds", 0.0)) + offset
        h["it"] = h.get("it", 0) + int(prior.get("iterations", 0))
        history.append(h)
    return {"from": start.get("name") or prior.get("from"), "device_seconds": seconds, "history": history,
            "iterations": int(start.get("iterations", 0)) + int(prior.get("iterations", 0))}


def export(checkpoint: str, output: str) -> dict:
    """The frozen fp16 file for the zoo (see freeze)."""
    blob = freeze(read(checkpoint))
    atomic_save(blob, output)
    return blob


def freeze(blob: dict) -> dict:
    """Round weights to fp16, recompute CDFs from the rounded weights, drop optimizer state: the shippable file."""
    net = build_model(blob["arch"], int(blob["N"]), int(blob["M"]), blob.get("lambda_range"))
    net.load_state_dict(blob["state_dict"])
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(p.half().float())
    net.update(force=True)
    # parameters in fp16; buffers (bounds, GDN pedestal, CDF tables) exactly as they are - 1e-9 or 2^-36 in fp16 is 0
    params = {name for name, _ in net.named_parameters()}
    state = {k: v.half() if k in params else v for k, v in net.state_dict().items()}
    keep = ("arch", "N", "M", "lambda", "lambda_range", "anchors", "metric", "iterations", "inherited",
            "training_data", "patch", "recipe", "device_seconds")
    last = blob["history"][-1] if blob.get("history") else {}
    history = [{k: h[k] for k in ("it", "points", "seconds", "cpu_seconds", "device") if k in h}
               for h in blob.get("history") or []]  # the training curve travels with the model (a few KB)
    return {"format": FORMAT, "frozen": True, **{k: blob[k] for k in keep if k in blob}, "validation": last,
            "history": history, "state_dict": state}
