"""The model zoo: frozen single-channel models shipped inside the package, listed with their sha256 in manifest.json.

A model is found by name in this folder, then in the folders of $MZC_MODELS (for models a user trained with
`mzc train`); its bytes must hash to the sha256 a .mzc file recorded, or decoding stops with a clear error.

Each shipped family is one variable-rate model (arch `FAMILY-vr`): `--codec learned:FAMILY` uses it at any rate.
The fixed-rate models of earlier releases (FAMILY-q1..q4) stay shipped so that files coded with them still decode;
they are used for new files only when named (`--codec learned:mbt2018-mean-q2`).
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from functools import lru_cache

from ....errors import MzcError

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_FAMILY = "mbt2018-mean"
# the families mzc.architectures builds (kept here so naming one does not import torch)
FAMILY_NAMES = ("bmshj2018-factorized", "bmshj2018-hyperprior", "mbt2018-mean", "mbt2018", "cheng2020-anchor",
                "cheng2020-attn")
# the variable-rate families of gained.py (one network for every rate)
VARIABLE_RATE_FAMILIES = ("mbt2018-mean-vr", "bmshj2018-factorized-vr", "wavelet-vr")
ARCHITECTURES = FAMILY_NAMES + VARIABLE_RATE_FAMILIES
ANCHORS = 8  # a variable-rate model's rate parameter runs over [0, ANCHORS - 1] (gained.py)


@dataclass(frozen=True)
class Entry:
    name: str
    arch: str
    lmbda: float
    path: str
    sha256: str | None  # None: a user model, hashed when used (arch "" until loaded)


@lru_cache(maxsize=1)
def manifest() -> dict:
    with open(os.path.join(HERE, "manifest.json"), encoding="utf-8") as fh:
        return json.load(fh)


def shipped() -> list[Entry]:
    return [Entry(m["name"], m["arch"], float(m.get("lambda") or 0.0), os.path.join(HERE, m["file"]), m["sha256"])
            for m in manifest()["models"]]


def search_dirs() -> list[str]:
    return [d for d in os.environ.get("MZC_MODELS", "").split(os.pathsep) if d]


def add_search_dir(folder: str) -> None:
    """Put a folder first on the model path of this process and its workers (a model given by path at encode)."""
    if folder not in search_dirs():
        os.environ["MZC_MODELS"] = os.pathsep.join([folder, *search_dirs()])


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def find(name: str) -> Entry:
    """The model called `name`: shipped first, then NAME.pt in a $MZC_MODELS folder; or, at encode, a path to a .pt
    file (recorded by its name without .pt, which must not shadow a shipped model)."""
    for e in shipped():
        if e.name == name:
            return e
    if name.endswith(".pt") and os.path.isfile(name):
        base = os.path.basename(name)[:-3]
        if any(e.name == base for e in shipped()):
            raise MzcError(f"{name}: a shipped model is called {base!r}; rename your model file")
        return Entry(base, "", 0.0, name, None)
    if os.sep in name or (os.altsep and os.altsep in name) or name in ("", ".", ".."):
        raise MzcError(f"model {name!r}: no such model file")
    for folder in search_dirs():
        path = os.path.join(folder, f"{name}.pt")
        if os.path.isfile(path):
            return Entry(name, "", 0.0, path, None)
    raise MzcError(f"model {name!r} is not installed: neither shipped with mzc nor found as {name}.pt in "
                   f"$MZC_MODELS ({os.pathsep.join(search_dirs()) or 'unset'})")


def family_model(family: str) -> Entry:
    """The variable-rate model of a family (`mbt2018-mean` or `mbt2018-mean-vr` both name it)."""
    arch = family if family.endswith("-vr") else f"{family}-vr"
    for e in shipped():
        if e.arch == arch:
            return e
    families = sorted({e.arch.removesuffix("-vr") for e in shipped() if e.arch.endswith("-vr")})
    raise MzcError(f"no variable-rate model of {family!r} is shipped; families: {', '.join(families) or 'none'}")


def is_variable_rate(arch: str) -> bool:
    return arch in VARIABLE_RATE_FAMILIES


def rate_points(family: str) -> list[Entry]:
    """The shipped models of one family, lowest rate (smallest lambda) first."""
    points = sorted((e for e in shipped() if e.arch == family), key=lambda e: e.lmbda)
    if not points:
        families = sorted({e.arch for e in shipped()})
        raise MzcError(f"no shipped models of {family!r}; shipped families: {', '.join(families)}")
    return points
