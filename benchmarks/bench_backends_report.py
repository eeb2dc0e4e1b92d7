"""The markdown of bench_backends.py: goals first (met or not, with the numbers), then every back end per file."""
from __future__ import annotations

NAMES = ("ctx", "jpegls", "jpeg2k", "jpeg2k-ht", "jpegxl", "jpegxl-e1", "jpegxl-e3")
LOSSLESS_GOAL, SPEED_GOAL, NOISE_GOAL, NOISE_SPEED_GOAL = 1.03, 5.0, 11.0, 0.5


def mbs(raw: float, seconds: float) -> str:
    return f"{raw / 1e6 / seconds:.1f}" if seconds > 0 else "-"


def met(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def lossless_goal(results: dict) -> list[str]:
    rows = ["| file | mzc ratio | JPEG XL e7 ratio | ratio vs e7 | encode vs e7 (checked) | encode vs e7 (--no-check)"
            " | decode MB/s |", "|---|---|---|---|---|---|---|"]
    tot = {"mzc": 0, "e7": 0, "raw": 0, "t": 0.0, "tn": 0.0, "te7": 0.0}
    for name, r in results.items():
        if r["dtype"] != "uint16":
            continue
        m, raw = r["lossless"], r["raw_bytes"]
        e7 = m["jxl_e7"]
        rows.append(f"| {name} | {raw / m['bytes']:.3f} | {raw / e7['bytes']:.3f} | {e7['bytes'] / m['bytes']:.3f}x "
                    f"| {e7['encode_s'] / m['encode_s']:.2f}x | {e7['encode_s'] / m['encode_nocheck_s']:.2f}x | "
                    f"{mbs(raw, m['decode_s'])} |")
        for key, value in (("mzc", m["bytes"]), ("e7", e7["bytes"]), ("raw", raw), ("t", m["encode_s"]),
                           ("tn", m["encode_nocheck_s"]), ("te7", e7["encode_s"])):
            tot[key] += value
    if not tot["raw"]:
        return []
    ratio, speed, speed_n = tot["e7"] / tot["mzc"], tot["te7"] / tot["t"], tot["te7"] / tot["tn"]
    worst = min(r["lossless"]["jxl_e7"]["bytes"] / r["lossless"]["bytes"] for r in results.values()
                if r["dtype"] == "uint16")
    rows.append(f"| **all 16-bit files** | {tot['raw'] / tot['mzc']:.3f} | {tot['raw'] / tot['e7']:.3f} | "
                f"{ratio:.3f}x | {speed:.2f}x | {speed_n:.2f}x | |")
    return ["## Goal: lossless ratio >= 1.03x JPEG XL effort 7, encode >= 5x faster (16-bit files)", "", *rows, "",
            f"- Ratio: {ratio:.3f}x JPEG XL e7 over all 16-bit files (worst file {worst:.3f}x): "
            f"{met(ratio >= LOSSLESS_GOAL)} overall, {met(worst >= LOSSLESS_GOAL)} on every file.",
            f"- Speed: the whole encode is {speed:.2f}x JPEG XL e7's CPU time with every chunk decoded back and "
            f"compared, {speed_n:.2f}x with --no-check: {met(speed_n >= SPEED_GOAL)}.", ""]


def noise_goal(results: dict) -> list[str]:
    rows = ["| file | ratio now | ratio before (JPEG-LS) | --effort max | max error (sigma) | encode s now | "
            "encode s before | speed now / before |", "|---|---|---|---|---|---|---|---|"]
    ratios, speeds = [], []
    for name, r in results.items():
        if "noise" not in r:
            continue
        n = r["noise"]
        speed = n["before"]["encode_s"] / n["now"]["encode_s"]
        ratios.append(n["now"]["ratio"])
        speeds.append(speed)
        rows.append(f"| {name} | {n['now']['ratio']:.2f} | {n['before']['ratio']:.2f} | {n['max']['ratio']:.2f} | "
                    f"{n['now']['max_error_sigma']:.4f} | {n['now']['encode_s']:.2f} | {n['before']['encode_s']:.2f} "
                    f"| {speed:.2f}x |")
    if not ratios:
        return []
    return ["## Goal: --noise 1 >= 11x on the 16-bit fluorescence files, at >= 0.5x the speed of the previous default",
            "", *rows, "",
            f"- Ratio: {min(ratios):.2f}-{max(ratios):.2f}x by default, every pixel within 1 sigma: "
            f"{met(min(ratios) >= NOISE_GOAL)} on all files ({sum(x >= NOISE_GOAL for x in ratios)}/{len(ratios)}).",
            f"- Speed: {min(speeds):.2f}-{max(speeds):.2f}x the previous default's encode: "
            f"{met(min(speeds) >= NOISE_SPEED_GOAL)}.", ""]


def back_end_table(results: dict) -> list[str]:
    rows = ["| file | back end | ratio | encode MB/s | decode MB/s | won (default set) | won (--effort max) |",
            "|---|---|---|---|---|---|---|"]
    totals = {"fast": {}, "max": {}}
    for name, r in results.items():
        b, raw = r["back_ends"], r["raw_bytes"]
        for n in NAMES:
            won = ["" if w is None else f"{w}/{b['chunks']}" for w in (b["wins_fast"].get(n), b["wins_max"].get(n))]
            rows.append(f"| {name} | {n} | {raw / b[n]['bytes']:.3f} | {mbs(raw, b[n]['encode_s'])} | "
                        f"{mbs(raw, b[n]['decode_s'])} | {won[0]} | {won[1]} |")
        for effort in totals:
            for n, w in b[f"wins_{effort}"].items():
                totals[effort][n] = totals[effort].get(n, 0) + w
    summary = [f"- {effort}: " + ", ".join(f"{n} {w}" for n, w in totals[effort].items()) for effort in totals]
    return ["## Every back end on every chunk", "", "Chunks won, over all files:", "", *summary, "", *rows, ""]


def choice_cost(results: dict) -> list[str]:
    rows = ["| file | ctx encode s | default set (ctx + JPEG-LS) s | cost of choosing |", "|---|---|---|---|"]
    for name, r in results.items():
        b = r["back_ends"]
        both = b["ctx"]["encode_s"] + b["jpegls"]["encode_s"]
        extra = 100 * (both / b["ctx"]["encode_s"] - 1)
        rows.append(f"| {name} | {b['ctx']['encode_s']:.2f} | {both:.2f} | +{extra:.0f}% |")
    return ["## What the per-chunk choice costs", "", *rows, ""]


def lines(results: dict, machine: str, doc: str) -> list[str]:
    return [f"Machine: {machine} (shared with other jobs while this ran: times are process CPU seconds). "
            "Command: `python benchmarks/bench_backends.py`.", "", doc.strip(), "",
            *lossless_goal(results), *noise_goal(results), *choice_cost(results), *back_end_table(results)]
