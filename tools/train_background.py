#!/usr/bin/env python
"""Keep training the shipped variable-rate families in the background, one core, nice'd, resumable.

    nohup nice -n 19 python tools/train_background.py --dir /work/models &

Round-robin over the families, `--chunk` steps each turn. Each family resumes from its local checkpoint
(DIR/FAMILY.pt) when there is one, else starts from the committed zoo model of that family (its weights are enough
to go on), else from scratch. Stop it with a signal: the step in progress finishes and a checkpoint is written.
Training data: ../shared/data/train16 and ../shared/data/train, never the evaluation files.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = (os.path.join(HERE, "..", "..", "shared", "data", "train16"), os.path.join(HERE, "..", "..", "shared", "data",
                                                                                    "train"))
FAMILIES = ("mbt2018-mean-vr", "bmshj2018-factorized-vr")
RECIPE = dict(patch=128, batch=8, lr=3e-4, warmup=500, validate_every=500, save_every=500)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default="/work/models", help="checkpoint folder (outside the repository)")
    parser.add_argument("--chunk", type=int, default=5000, help="steps per family per turn")
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--bf16", action="store_true")
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(1))
    from mzc.codecs.neural.modelfile import read
    from mzc.codecs.neural.train import TrainOptions, train
    while not stopping:
        for family in args.families.split(","):
            path = os.path.join(args.dir, f"{family}.pt")
            start = {}
            if os.path.exists(path):
                start = {"resume": path}
                done = int(read(path).get("iterations", 0))
            else:
                shipped = committed_model(family)
                start = {"init": shipped} if shipped else {"arch": family}
                done = 0
            opts = TrainOptions(output=path, data=DATA, iterations=done + args.chunk, threads=args.threads,
                                bf16=args.bf16, **RECIPE, **start)
            blob = train(opts, progress=None, stop=lambda: bool(stopping))
            last = blob["history"][-1] if blob["history"] else {}
            print(f"{family}: {blob['iterations']} steps, {last.get('points')}", flush=True)
            if stopping:
                break
    sys.exit(0)


def committed_model(family: str) -> str | None:
    from mzc.codecs.neural import zoo
    for entry in zoo.shipped():
        if entry.arch == family:
            return entry.path
    return None


if __name__ == "__main__":
    main()
