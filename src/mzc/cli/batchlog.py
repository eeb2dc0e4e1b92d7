"""`--log FILE`: one JSON line per input of a batch, appended, for a facility's records.

Each line says what became of one input -- encoded, done before (an earlier run's output verified), skipped or
failed -- with the sizes, ratio, mode, the sha256 of the input and output files, the seconds it took and whether
the input was removed. Lines are appended and synced one by one, so a killed run's log holds every input it
finished, and reruns add to the same file.
"""
from __future__ import annotations

import datetime
import json
import os
import time

from ..errors import MzcError


def file_sha256(path: str) -> str | None:
    """The file's sha256 (the model zoo's helper), None when it cannot be read: a log line is still written."""
    from ..codecs.neural.zoo import sha256_file
    try:
        return sha256_file(path)
    except OSError:
        return None


def mode_of(report: dict) -> str:
    """lossless, max-error E, noise K sigma, or lossy (with its target), from a report."""
    if report.get("bound"):
        return report["bound"]
    if report.get("max_abs_error") == 0 and report.get("target") is None:
        return "lossless"
    return f"lossy {report.get('target') or 'default'}"


class BatchLog:
    """Appends records to FILE; a run without --log gets one whose `record` does nothing."""

    def __init__(self, path: str | None):
        self.path = path
        self.fd = None
        if path is None:
            return
        if os.path.isdir(path):
            raise MzcError(f"--log {path} is a folder; give a file name")
        try:
            self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise MzcError(f"--log {path}: {exc.strerror or exc}") from None

    @property
    def active(self) -> bool:
        return self.fd is not None

    def input_digest(self, inp: str) -> str | None:
        """The input's sha256, taken before --rm removes it (only when logging)."""
        return file_sha256(inp) if self.active and inp != "-" else None

    def record(self, inp: str, output, status: str, started: float, report: dict | None = None,
               removed: bool = False, error: str | None = None, note: str | None = None,
               input_sha256: str | None = None) -> None:
        if self.fd is None:
            return
        out = output if isinstance(output, str) else "-"
        line = {"time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "input": inp, "output": out, "status": status}
        if report is not None:
            line.update({k: report.get(k) for k in ("bytes_in", "bytes_out", "ratio", "codec", "psnr_db",
                                                     "max_abs_error")})
            line["mode"] = mode_of(report)
        if status in ("encoded", "done"):
            line["input_sha256"] = input_sha256
            line["output_sha256"] = file_sha256(out) if out != "-" else None
        line["seconds"] = round(time.perf_counter() - started, 3)
        line["input_removed"] = removed
        if error is not None:
            line["error"] = error
        if note is not None:
            line["note"] = note
        os.write(self.fd, (json.dumps(line, default=str) + "\n").encode())
        os.fsync(self.fd)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
