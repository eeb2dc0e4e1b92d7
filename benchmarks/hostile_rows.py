#!/usr/bin/env python
"""Issue 17's attack table, re-run: each row's hostile file forged again (tests/forge.py) from a fresh synthetic stack
and fed to the `mzc` command as a user would. Records exit status, the error line, time, peak RSS (the command and
its sandbox processes) and whether a `.part` file was left.

    python benchmarks/hostile_rows.py     # -> benchmarks/results/hostile_rows.md

The files are forged in a child process (`--forge ROW FOLDER`): a command's peak RSS as the kernel reports it
includes that of the process it was started from, so the one starting the commands stays small (stdlib only).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results")


def heavy():
    """The imports the forging needs (never in the process that starts the commands)."""
    global np, tifffile, msgpack, mzc, MzcError, MzcFile, forge, io, struct
    import io
    import struct

    import msgpack
    import numpy as np
    import tifffile

    import mzc
    from mzc.errors import MzcError
    from mzc.io.reader import MzcFile
    sys.path.insert(0, ROOT)
    from tests import forge


def stack(shape, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:shape[-2], :shape[-1]]
    x = 1500 + 700 * np.sin(yy / 9.0) * np.cos(xx / 11.0) + rng.normal(0, 25, shape)
    return np.clip(x, 0, 4095).astype(np.uint16)


def encode(folder: str, data, **options) -> bytes:
    src = os.path.join(folder, "src.tif")
    tifffile.imwrite(src, data, metadata={"axes": "ZYX"[-data.ndim:]}, photometric="minisblack")
    mzc.encode(src, os.path.join(folder, "src.mzc"), **options)
    return open(os.path.join(folder, "src.mzc"), "rb").read()


def run(folder: str, data: bytes, *args: str) -> dict:
    """Record a case for main(): the forged file and the command to give it to."""
    path = os.path.join(folder, f"case{len(os.listdir(folder))}.mzc")
    open(path, "wb").write(data)
    return {"file": path, "args": list(args)}


def measure(folder: str, case: dict) -> dict:
    """`mzc ARGS` on the forged file: status, last stderr line, seconds, peak RSS (MB, with its sandbox processes)."""
    for f in os.listdir(folder):
        if f.startswith("out"):
            os.unlink(os.path.join(folder, f))
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "mzc", *[a.replace("FILE", case["file"]) for a in case["args"]]],
                            cwd=folder, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    lines = [line for line in err.splitlines() if line.strip()]
    said = lines[-1].replace(case["file"], "FILE")[:150] if lines else ""
    return {"status": os.waitstatus_to_exitcode(status), "lines": len(lines), "said": said,
            "seconds": round(time.monotonic() - started, 2), "rss_mb": round(usage.ru_maxrss / 1024),
            "part_left": any(f.endswith(".part") for f in os.listdir(folder))}


def mutations(raw: bytes, n: int, kinds=("overwrite", "insert", "delete", "truncate", "flip"), seed=1):
    rng = np.random.default_rng(seed)
    body = forge.chunk_body(raw)[1]
    for _ in range(n):
        kind, pos = kinds[rng.integers(len(kinds))], int(rng.integers(len(body)))
        value = bytes(rng.integers(0, 256, int(rng.integers(1, 7))).astype(np.uint8))
        yield forge.edit_chunk(raw, 0, body=lambda b, k=kind, p=pos, v=value: forge.mutate(b, k, p, v))


def outcomes(files, clean: np.ndarray) -> dict:
    """In-process reads (sandboxed decoders): how each forged file ended."""
    counts: dict[str, int] = {}
    for data in files:
        try:
            same = MzcFile(io.BytesIO(data)).read().tobytes() == clean.tobytes()
            key = "original pixels" if same else "WRONG PIXELS"
        except MzcError as exc:
            msg = str(exc)
            key = "crash contained" if "crashed" in msg else "deadline" if "did not finish" in msg else \
                "memory limit" if "memory limit" in msg else "decoder reported" if "reported an error" in msg else \
                "stream header" if "stream " in msg else "digest" if "digest" in msg else "other MzcError"
        counts[key] = counts.get(key, 0) + 1
    return counts


def row1(folder):
    raw = encode(folder, stack((1, 128, 128)), codec="sperr", quality="10x", chunks=(1, 128, 128))
    forged = list(mutations(raw, 1200))
    counts = outcomes(forged, MzcFile(io.BytesIO(raw)).read())
    crash = next(f for f in forged if "crashed" in _error(f))
    return f"1,200 forged SPERR streams: {counts}", run(folder, crash, "decode", "FILE", "-o", "out.tif")


def _error(data: bytes) -> str:
    try:
        MzcFile(io.BytesIO(data)).read()
    except MzcError as exc:
        return str(exc)
    return ""


def row2(folder):
    raw = encode(folder, stack((1, 128, 128)), codec="htj2k", quality="10x", chunks=(1, 128, 128))
    forged = forge.edit_chunk(raw, 0, body=lambda b: forge.mutate(b, "overwrite", 14, b"\x7f\xff\x00\x13\x37\x00"))
    return "6 bytes overwritten at offset 14", run(folder, forged, "decode", "FILE", "-o", "out.tif")


def row3(folder):
    raw = encode(folder, stack((1, 128, 128)), codec="htj2k", quality="5x", chunks=(1, 128, 128))
    counts = outcomes(mutations(raw, 1200, kinds=("insert",)), MzcFile(io.BytesIO(raw)).read())
    forged = forge.edit_chunk(raw, 0, body=lambda b: forge.mutate(b, "insert", 330, b"\x01\x02\x03"))
    return f"1,200 forged HTJ2K streams (inserts): {counts}", run(folder, forged, "decode", "FILE", "-o", "out.tif")


def _declares(body: bytes, fmt: str, marker: bytes, offset: int, size: int) -> bytes:
    out = bytearray(body)
    at = body.index(marker) + offset if marker else offset
    struct.pack_into(fmt, out, at, size, size)
    return bytes(out)


def row4(folder):
    rows = []
    cases = [({}, lambda b: _declares(b, ">HH", b"\xff\xf7", 5, 16384), "JPEG-LS 16384²", True),
             ({"codec": "j2k", "quality": "10x"}, lambda b: _declares(_declares(b, ">II", b"ihdr", 4, 16384), ">II",
                                                                       b"\xff\x51", 6, 16384), "J2K 16384²", False),
             ({"codec": "htj2k", "quality": "10x"}, lambda b: _declares(b, ">II", b"\xff\x51", 6, 65536),
              "HTJ2K 65536²", False),
             ({"codec": "sperr", "quality": "10x"}, lambda b: _declares(b, "<II", b"", 2, 16384), "SPERR 16384²",
              False)]
    for options, bigger, what, jpegls in cases:
        data = stack((1, 128, 128))
        raw = encode(folder, data, chunks=(1, 128, 128), **options)
        if jpegls:  # a JPEG-LS chunk, whichever back end the lossless encoder preferred
            import imagecodecs

            from mzc.io.decoding import digest
            raw = forge.edit_chunk(raw, 0, body=lambda b: imagecodecs.jpegls_encode(data[0]),
                                   params=lambda p: {"b": "jpegls", "d": digest(data)})
        rows.append((what, run(folder, forge.edit_chunk(raw, 0, body=bigger), "decode", "FILE", "-o", "out.tif")))
    return rows


def row5(folder):
    import imagecodecs

    from mzc.io.decoding import digest
    data = stack((1, 2048, 2048))
    raw = encode(folder, data, chunks=(1, 2048, 2048))
    raw = forge.edit_chunk(raw, 0, body=lambda b: imagecodecs.jpegls_encode(data[0]),
                           params=lambda p: {"b": "jpegls", "d": digest(data)})
    cut = forge.edit_chunk(raw, 0, body=lambda b: b[:len(b) // 2])
    recut = forge.edit_chunk(raw, 0, body=lambda b: b[:len(b) // 2] + b"\xff\xd9")
    return [("cut in half", run(folder, cut, "decode", "FILE", "-o", "out.tif")),
            ("cut, end marker put back", run(folder, recut, "decode", "FILE", "-o", "out.tif"))]


def row6(folder):
    raw = encode(folder, stack((1, 64, 80))[0])
    return [("--roi 5,: -o x.tif", run(folder, raw, "decode", "FILE", "--roi", "5,:", "-o", "out.tif"))]


def row7(folder):
    raw = encode(folder, stack((1, 16, 16)))
    cases = {"extratag code 70000": {"extratags": [[70000, 3, 1, [5]]]},
             "count that lies": {"extratags": [[50838, 4, 10, [1]]]},
             "resolution 2^64-1": {"resolution": [[(1 << 64) - 1, 1], [1, 1]]},
             "zero denominator": {"resolution": [[1, 0], [1, 0]]}}
    return [(name, run(folder, forge.edit_header(raw, lambda h, m=meta: dict(h, tiff=dict(h["tiff"], **m))),
                       "decode", "FILE", "-o", "out.tif")) for name, meta in cases.items()]


def _nested(depth: int):
    value = 1
    for _ in range(depth):
        value = [value]
    return value


def row8(folder):
    raw = encode(folder, stack((1, 16, 16)))
    listed = forge.replace_record(raw, b"rEPT", msgpack.packb([1, 2, 3]))
    deep = forge.replace_record(raw, b"rEPT", msgpack.packb({"x": _nested(600)}))
    config = forge.edit_header(raw, lambda h: dict(h, codec=dict(h["codec"], extra=_nested(600))))
    return [("report = list: info", run(folder, listed, "info", "FILE")),
            ("600-deep report: info --json", run(folder, deep, "info", "--json", "FILE")),
            ("600-deep codec config: info --json", run(folder, config, "info", "--json", "FILE"))]


def row9(folder):
    raw = encode(folder, stack((1, 32, 32)), codec="j2k", max_error=8)

    def chain(h):
        config = h["codec"]
        for _ in range(450):
            config = {"id": "bounded", "base": config, "bound": h["codec"]["bound"]}
        return dict(h, codec=config)
    return [("bounded base 450 deep", run(folder, forge.edit_header(raw, chain), "decode", "FILE", "-o", "out.tif"))]


def row10(folder):
    raw = encode(folder, stack((1, 16, 16)))
    return [(f"i = {v!r}", run(folder, forge.edit_chunk(raw, 0, meta=lambda m, v=v: dict(m, i=v)), "decode", "FILE",
                               "-o", "out.tif")) for v in (False, 0.0)]


def row11(folder):
    import imagecodecs

    from mzc.io.decoding import digest
    zeros = np.zeros((1, 16384, 16384), np.uint16)
    raw = encode(folder, zeros, chunks=(1, 16384, 16384))
    jpegls = forge.edit_chunk(raw, 0, body=lambda b: imagecodecs.jpegls_encode(zeros[0]),
                              params=lambda p: {"b": "jpegls", "d": digest(zeros)})
    back_end = forge.chunk_body(raw)[0].get("b")
    return [(f"16384² zeros, one chunk (array 512 MiB), back end {back_end}",
             run(folder, raw, "decode", "FILE", "-o", "out.tif")),
            ("the same, JPEG-LS chunk", run(folder, jpegls, "decode", "FILE", "-o", "out.tif"))]


ROWS = (row1, row2, row3, row4, row5, row6, row7, row8, row9, row10, row11)


def forge_row(k: int, folder: str) -> None:
    heavy()
    result = ROWS[k - 1](folder)
    note = None
    if isinstance(result, tuple):
        note, result = result[0], [("CLI on one such file", result[1])]
    with open(os.path.join(folder, "cases.json"), "w") as fh:
        json.dump({"note": note, "cases": [[name, case] for name, case in result]}, fh)


def main() -> None:
    lines = ["# Issue 17's attack table, re-run", "", "`python benchmarks/hostile_rows.py`: each hostile file forged "
             "again from a fresh synthetic stack (tests/forge.py) and given to the `mzc` command. RSS: the command's "
             "peak with its sandbox processes.", "", "| row | case | exit | stderr lines | last line | s | peak RSS MB "
             "| .part left |", "|---|---|---|---|---|---|---|---|"]
    notes = []
    for k in range(1, len(ROWS) + 1):
        with tempfile.TemporaryDirectory() as folder:
            subprocess.run([sys.executable, __file__, "--forge", str(k), folder], check=True)
            forged = json.load(open(os.path.join(folder, "cases.json")))
            if forged["note"]:
                notes.append(f"- row {k}: {forged['note']}")
            for name, case in forged["cases"]:
                r = measure(folder, case)
                lines.append(f"| {k} | {name} | {r['status']} | {r['lines']} | {r['said'].replace('|', '/')} | "
                             f"{r['seconds']} | {r['rss_mb']} | {r['part_left']} |")
                print(lines[-1], flush=True)
    with open(os.path.join(RESULTS, "hostile_rows.md"), "w") as fh:
        fh.write("\n".join(lines + [""] + notes) + "\n")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--forge":
        forge_row(int(sys.argv[2]), sys.argv[3])
    else:
        main()
