"""Freeze training checkpoints into src/mzc/codecs/neural/zoo/ and rewrite manifest.json (run by hand after training).

usage: python tools/build_zoo.py NAME=CHECKPOINT [...]
Each model is rounded to fp16, its CDF tables recomputed from the rounded weights (update(force=True)), saved as
NAME.pt and listed with arch, N/M, lambda (fixed-rate) or lambda range (variable-rate), total steps, CPU/GPU hours,
training data, validation and sha256. Existing entries of other names stay (the fixed-rate models of earlier
releases must stay shipped: files coded with them name them).
"""
from __future__ import annotations

import json
import os
import sys

from mzc.codecs.neural import zoo
from mzc.codecs.neural.modelfile import atomic_save, export, lineage, read
from mzc.codecs.neural.zoo import sha256_file

NEVER = "never the evaluation set (../shared/data/*.tif)"


def entry(name: str, blob: dict, out: str) -> dict:
    """The manifest entry of one frozen model."""
    data = blob.get("training_data") or {}
    dirs = ", ".join(os.path.relpath(d, os.path.join(zoo.HERE, "..", "..", "..", "..", "..")) for d in
                     data.get("dirs", [])) or "../shared/data/train"
    inherited = (blob.get("inherited") or {}).get("iterations", 0)
    seconds = dict(blob.get("device_seconds") or {})
    for device, value in ((blob.get("inherited") or {}).get("device_seconds") or {}).items():
        seconds[device] = seconds.get(device, 0.0) + value  # the hours of the models it started from count too
    item = {"name": name, "file": f"{name}.pt", "arch": blob["arch"], "N": blob["N"], "M": blob["M"],
            "metric": blob.get("metric", "mse"), "iterations": blob["iterations"] + inherited,
            "patch": blob.get("patch"), "recipe": blob.get("recipe"),
            "cpu_hours": round(seconds.get("cpu", 0.0) / 3600, 2), "gpu_hours": round(seconds.get("gpu", 0.0) / 3600, 2),
            "training_data": f"{dirs}: {data.get('files', '?')} files, {data.get('planes', '?')} planes "
                             f"({data.get('sixteen_bit_planes', '?')} 16-bit); {NEVER}",
            "validation": blob.get("validation", {}), "bytes": os.path.getsize(out), "sha256": sha256_file(out)}
    if zoo.is_variable_rate(blob["arch"]):
        item.update(variable_rate=True, family=blob["arch"].removesuffix("-vr"), anchors=blob.get("anchors"),
                    lambda_range=blob.get("lambda_range"), **{"lambda": None})
    else:
        item.update(variable_rate=False, **{"lambda": blob["lambda"]})
    return item


def with_lineage(checkpoint: str, out: str) -> str:
    """A run started (--init) from the shipped model it replaces, by a trainer that recorded only its steps: fill
    in that model's hours and history before the file is overwritten (a copy of the checkpoint; the original stays)."""
    blob = read(checkpoint)
    inherited = blob.get("inherited") or {}
    if inherited.get("history") is not None or inherited.get("from") != os.path.basename(out) or \
            not os.path.exists(out):
        return checkpoint
    blob["inherited"] = dict(lineage(read(out)), **{"from": inherited["from"]})
    copy = checkpoint + ".lineage"
    atomic_save(blob, copy)
    return copy


def main(pairs: list[str]) -> None:
    path = os.path.join(zoo.HERE, "manifest.json")
    with open(path, encoding="utf-8") as fh:
        models = {m["name"]: m for m in json.load(fh)["models"]}
    for pair in pairs:
        name, _, checkpoint = pair.partition("=")
        out = os.path.join(zoo.HERE, f"{name}.pt")
        checkpoint = with_lineage(checkpoint, out)
        blob = export(checkpoint, out)
        models[name] = entry(name, blob, out)
        print(name, blob["arch"], models[name]["iterations"], models[name]["validation"])
    ordered = sorted(models.values(), key=lambda m: (not m.get("variable_rate", False), m["arch"],
                                                     m.get("lambda") or 0))
    with open(path + ".part", "w", encoding="utf-8") as fh:
        json.dump({"format": 1, "models": ordered}, fh, indent=1)
        fh.write("\n")
    os.replace(path + ".part", path)


if __name__ == "__main__":
    main(sys.argv[1:])
