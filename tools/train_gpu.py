#!/usr/bin/env python
"""Train every shipped variable-rate family on a GPU machine in one run of at most ~10 minutes.

    python tools/train_gpu.py --out "$OUT" [--minutes 9] [--device cuda] [--data DIR ...]

Each family gets an equal share of the minutes. It starts from the checkpoint in --out when there is one (a run
resumed on the same machine), else from the committed zoo model (its weights are enough to go on), and writes
OUT/FAMILY.pt: bring those back and freeze them with tools/build_zoo.py when they beat the shipped models on
validation. The GPU's larger batches are the point: 16 x 256 px patches, bf16 autocast.
Tested on the CPU with a few iterations (tests/test_train_gpu.py); the recipe is the one bench_train_recipe.py chose.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.join(HERE, "..", "..", "shared", "data")
GPU_RECIPE = dict(patch=256, batch=16, lr=3e-4, warmup=200, validate_every=250, save_every=500, bf16=True)


def start_of(family: str, out: str) -> dict:
    from mzc.codecs.neural import zoo
    from mzc.errors import MzcError
    local = os.path.join(out, f"{family}.pt")
    if os.path.exists(local):
        return {"resume": local}
    try:
        return {"init": zoo.family_model(family.removesuffix("-vr")).path}
    except MzcError:  # a family not shipped yet starts from scratch
        return {"arch": family}


def main(argv: list[str] | None = None) -> int:
    from mzc.codecs.neural.modelfile import read
    from mzc.codecs.neural.train import TrainOptions, train
    from mzc.codecs.neural.zoo import VARIABLE_RATE_FAMILIES
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="where the checkpoints go (and come from on a resumed run)")
    parser.add_argument("--minutes", type=float, default=9.0, help="wall-clock minutes for all families together")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--iterations", type=int, help="stop each family after this many steps (tests)")
    parser.add_argument("--data", nargs="*", default=[os.path.join(SHARED, "train16"), os.path.join(SHARED, "train")])
    parser.add_argument("--families", default=",".join(VARIABLE_RATE_FAMILIES))
    parser.add_argument("--patch", type=int, default=GPU_RECIPE["patch"])
    parser.add_argument("--batch", type=int, default=GPU_RECIPE["batch"])
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    families = args.families.split(",")
    recipe = dict(GPU_RECIPE, bf16=GPU_RECIPE["bf16"] and args.device != "cpu", patch=args.patch, batch=args.batch)
    for family in families:
        start = start_of(family, args.out)
        done = int(read(start["resume"]).get("iterations", 0)) if "resume" in start else 0
        deadline = time.perf_counter() + args.minutes * 60 / len(families)
        output = os.path.join(args.out, f"{family}.pt")
        opts = TrainOptions(output=output, data=tuple(args.data), device=args.device,
                            iterations=done + (args.iterations or 10 ** 7), **recipe, **start)
        blob = train(opts, stop=lambda deadline=deadline: time.perf_counter() > deadline)
        last = blob["history"][-1] if blob["history"] else {}
        print(f"{family}: {blob['iterations']} steps -> {output} {last.get('points')}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
