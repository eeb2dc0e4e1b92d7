"""Freeze training checkpoints into src/mzc/zoo/ and rewrite manifest.json (run by hand after `mzc train`).

usage: python tools/build_zoo.py NAME=CHECKPOINT[@BASE_STEPS] [...]
(@BASE_STEPS: steps of the model a fine-tune started from, for checkpoints that do not record it themselves)
Each model is rounded to fp16, its CDF tables recomputed from the rounded weights (update(force=True)), saved as
NAME.pt and listed with arch, N/M, lambda, iterations, training data and sha256. Existing entries of other names stay.
"""
from __future__ import annotations

import json
import os
import sys

from mzc.codecs.neural import zoo
from mzc.codecs.neural.modelfile import export
from mzc.codecs.neural.zoo import sha256_file

TRAINING_DATA = ("../shared/data/train: 90 TIFFs (CellProfiler/examples BSD-3 8-bit fluorescence and brightfield, "
                 "BioImageAnalysisNotebooks membrane_2d_timelapse u16 and maize_clsm u8); never the evaluation set")


def main(pairs: list[str]) -> None:
    path = os.path.join(zoo.HERE, "manifest.json")
    with open(path, encoding="utf-8") as fh:
        models = {m["name"]: m for m in json.load(fh)["models"]}
    for pair in pairs:
        name, _, checkpoint = pair.partition("=")
        checkpoint, _, base = checkpoint.partition("@")
        out = os.path.join(zoo.HERE, f"{name}.pt")
        blob = export(checkpoint, out)
        last = blob.get("validation", {})
        inherited = (blob.get("inherited") or {}).get("iterations", int(base or 0))
        models[name] = {"name": name, "file": f"{name}.pt", "arch": blob["arch"], "N": blob["N"], "M": blob["M"],
                        "lambda": blob["lambda"], "metric": blob.get("metric", "mse"),
                        "iterations": blob["iterations"] + inherited, "fine_tune_iterations": blob["iterations"]
                        if inherited else None, "patch": blob.get("patch"),
                        "training_data": f"{TRAINING_DATA} ({blob['training_data']['planes']} planes)",
                        "validation": last, "bytes": os.path.getsize(out), "sha256": sha256_file(out)}
        print(name, blob["arch"], blob["lambda"], blob["iterations"], last)
    ordered = sorted(models.values(), key=lambda m: (m["arch"], m["lambda"]))
    with open(path + ".part", "w", encoding="utf-8") as fh:
        json.dump({"format": 1, "models": ordered}, fh, indent=1)
        fh.write("\n")
    os.replace(path + ".part", path)


if __name__ == "__main__":
    main(sys.argv[1:])
