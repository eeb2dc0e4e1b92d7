#!/usr/bin/env python
"""The reader's long fuzz run (issue 17): forge N hostile files from files written by every codec and count what the
reader does with them.

    python tools/fuzz_reader.py --cases 100000 [--seed 17] [--deadline 5] [--out benchmarks/results/fuzz]

Each case changes one record of a freshly encoded file (tests/forge.py: bytes overwritten, inserted, deleted,
flipped or cut inside a DATA, HEAD or rEPT payload, or one chunk parameter / header value replaced by a hostile one)
and rebuilds every length, index entry and CRC; 5% of the cases damage the finished file's bytes instead (ordinary
damage, no CRC rebuilt). The file is read whole and verified. Outcomes per codec: the original pixels, a MzcError
(split by cause), another exception, different pixels without an error, a hang (no answer within a minute) or a
crash (the reading process died). Cases run in batches in a fresh runner process per batch, whose peak RSS and that
of its sandbox processes are recorded. Writes OUT.json and OUT.md.
"""
from __future__ import annotations

import argparse
import collections
import io
import json
import multiprocessing as mp
import os
import platform
import resource
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "src"))

import numpy as np  # noqa: E402 - after the path setup

KINDS = ("overwrite", "insert", "delete", "truncate", "flip")
HOSTILE_VALUES = (0, -1, 1, 7, 1 << 31, (1 << 63) - 1, -(1 << 63), 1.5, float("nan"), float("inf"), "x", "", None,
                  True, False, [], {}, [0, 0], {"a": 1}, b"", b"\xff" * 9)
SMALL = {
    "lossless": {}, "lossless-jpegls": {}, "lossless-jpeg2k": {}, "lossless-jpeg2k-ht": {}, "lossless-jpegxl": {},
    "lossless-float32": {}, "nearlossless": {"max_error": 3}, "noise": {"noise": 1.0},
    "noise-jxl": {"noise": 1.0, "effort": "max"}, "bounded-j2k": {"codec": "j2k", "max_error": 8},
    "bounded-sperr-noise": {"codec": "sperr", "noise": 1.0},
    "j2k": {"codec": "j2k", "knob": 60.0}, "htj2k": {"codec": "htj2k", "knob": 300.0},
    "jxl": {"codec": "jxl", "knob": 1.0}, "avif": {"codec": "avif", "knob": 80.0},
    "sperr": {"codec": "sperr", "knob": 3.0}, "sperr-3d": {"codec": "sperr", "knob": 3.0, "chunks": (3, 48, 64)},
}
LARGE = {"inr": {"codec": "inr", "quality": "8x", "time_budget": 8},
         "hybrid": {"codec": "hybrid", "quality": "6x", "time_budget": 8},
         "learned": {"codec": "learned", "quality": "6.4x"}}


def sample(name: str, shape) -> np.ndarray:
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:shape[-2], :shape[-1]]
    x = 1200 + 600 * np.sin(yy / 6.0) * np.cos(xx / 8.0) + rng.normal(0, 20, shape)
    return x.astype(np.float32) if name.endswith("float32") else np.clip(x, 0, 4095).astype(np.uint16)


def build_files(folder: str, names: list[str]) -> dict[str, bytes]:
    """name -> encoded bytes, for every codec that encodes here (a missing optional back end is skipped)."""
    from pathlib import Path

    from tests.conftest import write_tiff

    import mzc
    files = {}
    for name in names:
        options = dict(SMALL[name] if name in SMALL else LARGE[name])
        shape = (3, 48, 64) if name in SMALL else (2, 128, 128)
        src = write_tiff(Path(folder) / f"{name}.tif", sample(name, shape), "ZYX")
        try:
            mzc.encode(str(src), os.path.join(folder, f"{name}.mzc"), **options)
        except Exception as exc:  # noqa: BLE001 - a codec that cannot encode here is reported, not fatal
            print(f"skipping {name}: {type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        files[name] = open(os.path.join(folder, f"{name}.mzc"), "rb").read()
        if name.startswith("lossless-") and not name.endswith("float32"):  # one native back end, whatever won
            from tests import forge
            files[name] = forge.with_backend(files[name], name.removeprefix("lossless-"))
    return files


# ------------------------------------------------------------------------------------------ forging one case
def _random_path(rng, value, depth=0):
    """A (container, key) inside a decoded msgpack value, chosen at random (None when it holds nothing)."""
    if isinstance(value, dict) and value:
        key = list(value)[rng.integers(len(value))]
    elif isinstance(value, list) and value:
        key = int(rng.integers(len(value)))
    else:
        return None
    inner = value[key]
    if depth < 6 and isinstance(inner, (dict, list)) and inner and rng.random() < 0.6:
        found = _random_path(rng, inner, depth + 1)
        if found is not None:
            return found
    return value, key


def _set_random_value(rng, value):
    found = _random_path(rng, value)
    if found is not None:
        container, key = found
        container[key] = HOSTILE_VALUES[rng.integers(len(HOSTILE_VALUES))]
    return value


def forge_case(raw: bytes, rng) -> tuple[bytes, str]:
    """One hostile file and a short description of what was done."""
    from tests import forge
    roll = rng.random()
    if roll < 0.05:  # ordinary damage: a byte of the finished file, CRCs not rebuilt
        pos = int(rng.integers(len(raw)))
        return raw[:pos] + bytes([raw[pos] ^ int(rng.integers(1, 256))]) + raw[pos + 1:], "raw-flip"
    records = forge.split(raw)[1]
    data = forge.data_records(raw)
    which = int(data[rng.integers(len(data))]) if roll < 0.7 else int(rng.integers(len(records)))
    rtype = records[which][0].decode("latin1")
    if rng.random() < 0.15:  # a structured value replaced by a hostile one
        if rtype == "DATA":
            chunk = data.index(which)
            return forge.edit_chunk(raw, chunk, params=lambda p: _set_random_value(rng, p) if p else
                                    dict(p, d=HOSTILE_VALUES[rng.integers(len(HOSTILE_VALUES))])), "DATA-param"
        if rtype == "HEAD":
            return forge.edit_header(raw, lambda h: _set_random_value(rng, h)), "HEAD-value"
    kind = KINDS[rng.integers(len(KINDS))]
    value = bytes(rng.integers(0, 256, int(rng.integers(1, 9))).astype(np.uint8))
    return forge.edit(raw, which, lambda p: forge.mutate(p, kind, int(rng.integers(len(p) + 1)), value)), \
        f"{rtype}-{kind}"


# ------------------------------------------------------------------------------------------ judging one case
def classify(message: str) -> str:
    for key, words in (("crash-contained", ("crashed",)), ("deadline", ("did not finish",)),
                       ("memory-limit", ("memory limit",)), ("decoder-reported", ("reported an error",)),
                       ("stream-header", ("stream ",)), ("digest", ("digest",)), ("checksum", ("checksum",))):
        if any(w in message for w in words):
            return key
    return "other-mzcerror"


def judge(forged: bytes, clean: bytes) -> tuple[str, str]:
    from mzc.errors import MzcError
    from mzc.io.reader import MzcFile
    try:
        mz = MzcFile(io.BytesIO(forged))
        out = mz.read()
        mz.verify()
    except MzcError as exc:
        return "mzcerror", classify(str(exc))
    except Exception as exc:  # noqa: BLE001 - counting what escapes is the point of this tool
        return "other-exception", f"{type(exc).__name__}: {str(exc)[:120]}"
    return ("same", "") if out.tobytes() == clean else ("wrong-without-error", "")


def runner(conn, name: str, raw: bytes, seed: int, first: int, count: int, deadline: float) -> None:
    """One batch in a fresh process: (case index, outcome, cause, how, seconds) per case, then the peak RSS."""
    from mzc import sandbox
    from mzc.io import decoding
    from mzc.io.reader import MzcFile
    decoding.DEADLINE_BASE_S = deadline
    clean = MzcFile(io.BytesIO(raw)).read().tobytes()
    for index in range(first, first + count):
        rng = np.random.default_rng([seed, index])
        forged, how = forge_case(raw, rng)
        started = time.monotonic()
        outcome, cause = judge(forged, clean)
        conn.send((index, outcome, cause, how, time.monotonic() - started))
    sandbox.shutdown()
    conn.send(("rss", high_water_kb(), resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))


def high_water_kb() -> int:
    """This process's own peak RSS (VmHWM; ru_maxrss would carry the spawning parent's over exec)."""
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))


# ------------------------------------------------------------------------------------------ the run
HANG_S = 60.0  # no answer from the runner for this long: a hang (the sandbox deadline is far shorter)


class Tally:
    def __init__(self):
        self.outcomes, self.causes, self.hows = collections.Counter(), collections.Counter(), collections.Counter()
        self.examples: list[str] = []
        self.max_seconds = self.total_seconds = 0.0
        self.rss_runner = self.rss_sandbox = 0

    def add(self, index: int, outcome: str, cause: str, how: str, seconds: float) -> None:
        self.outcomes[outcome] += 1
        self.hows[how] += 1
        if outcome == "mzcerror":
            self.causes[cause] += 1
        elif outcome not in ("same",) and len(self.examples) < 8:
            self.examples.append(f"case {index} ({how}): {outcome} {cause}".strip())
        self.max_seconds = max(self.max_seconds, seconds)
        self.total_seconds += seconds

    def summary(self) -> dict:
        return {"cases": sum(self.outcomes.values()), "outcomes": dict(self.outcomes), "mzcerror_causes":
                dict(self.causes), "mutations": dict(self.hows), "max_seconds": round(self.max_seconds, 3),
                "mean_ms": round(1000 * self.total_seconds / max(1, sum(self.outcomes.values())), 2),
                "peak_rss_mb_reader": round(self.rss_runner / 1024, 1),
                "peak_rss_mb_sandbox": round(self.rss_sandbox / 1024, 1), "examples": self.examples}


def run_batch(ctx, name: str, raw: bytes, args, first: int, count: int, tally: Tally) -> None:
    """Cases first..first+count-1 in fresh runner processes; a runner that dies or stalls is one crash or hang,
    and the batch goes on after that case."""
    end = first + count
    while first < end:
        receive, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=runner, args=(send, name, raw, args.seed, first, end - first, args.deadline))
        proc.start()
        send.close()
        while True:
            if not receive.poll(HANG_S):
                proc.kill()
                tally.add(first, "hang", "", "?", HANG_S)
                first += 1
                break
            try:
                msg = receive.recv()
            except EOFError:
                tally.add(first, "crash", f"runner exit {proc.exitcode}", "?", 0.0)
                first += 1
                break
            if msg[0] == "rss":
                tally.rss_runner, tally.rss_sandbox = max(tally.rss_runner, msg[1]), max(tally.rss_sandbox, msg[2])
                first = end
                break
            tally.add(*msg)
            first = msg[0] + 1
        proc.join()


def write_results(out: str, tallies: dict[str, Tally], args, seconds: float) -> None:
    import imagecodecs
    result = {"command": " ".join(["python", "tools/fuzz_reader.py"] + sys.argv[1:]), "seed": args.seed,
              "deadline_s": args.deadline, "wall_seconds": round(seconds), "python": platform.python_version(),
              "imagecodecs": imagecodecs.__version__, "codecs": {n: t.summary() for n, t in tallies.items()}}
    with open(out + ".json", "w") as fh:
        json.dump(result, fh, indent=1)
    rows = ["| codec | cases | original pixels | MzcError | other exceptions | wrong pixels, no error | hangs | "
            "crashes | decoder crashes contained | deadline kills | memory-limit kills | max s/case | mean ms/case | "
            "peak RSS reader / sandbox (MB) |", "|" + "---|" * 14]
    for name, t in tallies.items():
        s, c = t.summary(), t.causes
        rows.append(f"| {name} | {s['cases']} | {t.outcomes['same']} | {t.outcomes['mzcerror']} | "
                    f"{t.outcomes['other-exception']} | {t.outcomes['wrong-without-error']} | {t.outcomes['hang']} | "
                    f"{t.outcomes['crash']} | {c['crash-contained']} | {c['deadline']} | {c['memory-limit']} | "
                    f"{s['max_seconds']} | {s['mean_ms']} | {s['peak_rss_mb_reader']} / {s['peak_rss_mb_sandbox']} |")
    with open(out + ".md", "w") as fh:
        fh.write(f"# Reader fuzz run\n\n`{result['command']}` ({time.strftime('%Y-%m-%d')}, {seconds / 3600:.1f} h, "
                 f"Python {result['python']}, imagecodecs {result['imagecodecs']}, sandbox deadline "
                 f"{args.deadline:g} s + 2 us/element)\n\n" + "\n".join(rows) + "\n\nMzcError causes and examples of "
                 "anything else: " + os.path.basename(out) + ".json.\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--deadline", type=float, default=5.0, help="sandbox deadline base, seconds")
    parser.add_argument("--codecs", default=",".join([*SMALL, *LARGE]))
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "fuzz"))
    args = parser.parse_args()
    import tempfile
    with tempfile.TemporaryDirectory() as folder:
        files = build_files(folder, args.codecs.split(","))
    ctx, started = mp.get_context("spawn"), time.monotonic()
    tallies = {name: Tally() for name in files}
    per_codec = args.cases // max(1, len(files))
    for first in range(0, per_codec, args.batch):
        for name, raw in files.items():
            run_batch(ctx, name, raw, args, first, min(args.batch, per_codec - first), tallies[name])
        done = sum(sum(t.outcomes.values()) for t in tallies.values())
        print(f"{done} cases, {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
        write_results(args.out, tallies, args, time.monotonic() - started)


if __name__ == "__main__":
    main()
