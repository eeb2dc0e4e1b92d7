"""spec/FORMAT.md section 10: the example file in the spec is exactly what the writer produces, and it decodes."""
from __future__ import annotations

import io
import re

import numpy as np

from mzc.format.container import Writer
from mzc.io.reader import MzcFile
from tests.conftest import ROOT

EXAMPLE_HEADER = {"shape": [2, 3], "dtype": "|u1", "axes": "YX", "chunks": [2, 3], "n_chunks": 1,
                  "codec": {"id": "lossless"}, "tiff": {}, "software": "mzc-spec"}


def build_example() -> bytes:
    buf = io.BytesIO()
    w = Writer(buf, EXAMPLE_HEADER)
    w.write_chunk(0, {"b": "raw"}, bytes([1, 2, 3, 4, 5, 6]))
    w.close()
    return buf.getvalue()


def hexdump(data: bytes) -> str:
    lines = []
    for off in range(0, len(data), 16):
        row = data[off:off + 16]
        lines.append(f"{off:08x}  {row.hex(' ')}")
    return "\n".join(lines)


def spec_dump() -> bytes:
    text = (ROOT / "spec" / "FORMAT.md").read_text()
    block = text.split("## 10.")[1].split("```")[1]
    hexes = [m.group(1) for m in re.finditer(r"^[0-9a-f]{8}  ((?:[0-9a-f]{2} ?)+)$", block, flags=re.M)]
    return bytes.fromhex("".join(h.replace(" ", "") for h in hexes))


def test_spec_example_is_byte_exact():
    assert spec_dump() == build_example()


def test_spec_example_decodes():
    mz = MzcFile(io.BytesIO(spec_dump()))
    assert mz.read().tolist() == [[1, 2, 3], [4, 5, 6]]
    assert mz.read().dtype == np.uint8


if __name__ == "__main__":  # print the dump to paste into the spec
    print(hexdump(build_example()))
