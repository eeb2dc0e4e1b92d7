"""Forge hostile .mzc files as an attacker would: change what is inside a record, then rebuild every length, the
index, the footer and all CRC-32Cs so that the file passes the container's checks and reaches the decoders.

Used by tests/test_hostile.py, tests/test_fuzz.py and tools/fuzz_reader.py.
"""
from __future__ import annotations

import struct
from typing import Callable

import msgpack

from mzc.format.container import (
    DATA,
    FOOTER_HEAD,
    HEAD,
    INDEX_ENTRY,
    INDX,
    MAJOR,
    MINOR,
    PREAMBLE_SIZE,
    Reader,
    crc32c,
    record_bytes,
)

END = b"MZCEND\r\n"


def split(data: bytes) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """(preamble, [(type, payload)...]) of a valid file, INDX left out."""
    import io
    reader = Reader(io.BytesIO(data))
    return data[:PREAMBLE_SIZE], [(e.rtype, reader.read_record(e)) for e in reader.entries]


def join(preamble: bytes, records: list[tuple[bytes, bytes]]) -> bytes:
    """A file from records: fresh record CRCs, index (entries in record order), footer."""
    out, entries, pos = bytearray(preamble), [], len(preamble)
    for rtype, payload in records:
        rec = record_bytes(rtype, payload)
        entries.append(INDEX_ENTRY.pack(rtype, 0, pos, len(rec)))
        out += rec
        pos += len(rec)
    index = record_bytes(INDX, struct.pack("<Q", len(entries)) + b"".join(entries))
    out += index
    head = FOOTER_HEAD.pack(pos, len(index), preamble[8] if len(preamble) > 9 else MAJOR,
                            preamble[9] if len(preamble) > 9 else MINOR, 0)
    return bytes(out + head + struct.pack("<I", crc32c(head)) + END)


def chunk_parts(payload: bytes) -> tuple[dict, bytes]:
    """(meta map, body) of a DATA payload (meta = {"i": index, "p": params})."""
    (n,) = struct.unpack_from("<I", payload)
    return msgpack.unpackb(payload[4:4 + n], raw=False, strict_map_key=False), payload[4 + n:]


def chunk_payload(meta, body: bytes) -> bytes:
    packed = msgpack.packb(meta, use_bin_type=True)
    return struct.pack("<I", len(packed)) + packed + body


def edit(data: bytes, which: int, change: Callable[[bytes], bytes]) -> bytes:
    """Replace the payload of the `which`-th record (file order) by change(payload)."""
    preamble, records = split(data)
    rtype, payload = records[which]
    records[which] = (rtype, change(payload))
    return join(preamble, records)


def data_records(data: bytes) -> list[int]:
    """Positions (in file order) of the DATA records."""
    return [k for k, (rtype, _) in enumerate(split(data)[1]) if rtype == DATA]


def edit_chunk(data: bytes, chunk: int = 0, body: Callable[[bytes], bytes] | None = None,
               params: Callable[[dict], dict] | None = None, meta: Callable[[dict], object] | None = None) -> bytes:
    """Change one chunk's body, params or whole meta map (each a function of the old value)."""
    def change(payload: bytes) -> bytes:
        m, b = chunk_parts(payload)
        if params is not None:
            m["p"] = params(dict(m["p"]))
        if meta is not None:
            m = meta(m)
        return chunk_payload(m, body(b) if body is not None else b)
    return edit(data, data_records(data)[chunk], change)


def edit_header(data: bytes, change: Callable[[dict], object]) -> bytes:
    def rewrite(payload: bytes) -> bytes:
        return msgpack.packb(change(msgpack.unpackb(payload, raw=False, strict_map_key=False)), use_bin_type=True)
    return edit(data, 0, rewrite)


def replace_record(data: bytes, rtype: bytes, payload: bytes) -> bytes:
    """Set the payload of the first record of `rtype` (appended before INDX when there is none)."""
    preamble, records = split(data)
    for k, (t, _) in enumerate(records):
        if t == rtype:
            records[k] = (t, payload)
            break
    else:
        records.append((rtype, payload))
    return join(preamble, records)


def chunk_body(data: bytes, chunk: int = 0) -> tuple[dict, bytes]:
    """(params, body) of one chunk, for tests that build on them."""
    _, records = split(data)
    m, b = chunk_parts(records[data_records(data)[chunk]][1])
    return m["p"], b


def mutate(payload: bytes, kind: str, pos: int, value: bytes) -> bytes:
    """One random-looking change inside a payload: overwrite, insert, delete, truncate or flip at `pos`."""
    pos = min(pos, len(payload))
    if kind == "overwrite":
        return payload[:pos] + value + payload[pos + len(value):]
    if kind == "insert":
        return payload[:pos] + value + payload[pos:]
    if kind == "delete":
        return payload[:pos] + payload[pos + max(1, len(value)):]
    if kind == "truncate":
        return payload[:pos]
    if kind == "flip":
        if pos >= len(payload):
            return payload
        return payload[:pos] + bytes([payload[pos] ^ (value[0] if value and value[0] else 1)]) + payload[pos + 1:]
    raise ValueError(kind)


__all__ = ["DATA", "HEAD", "chunk_body", "chunk_parts", "chunk_payload", "data_records", "edit", "edit_chunk",
           "edit_header", "join", "mutate", "replace_record", "split"]


def with_backend(data: bytes, name: str) -> bytes:
    """A lossless file whose every chunk is re-coded by one image back end (jpegls, jpeg2k, jpeg2k-ht, jpegxl): the
    encoder may prefer another, and each native decoder must meet hostile streams all the same."""
    import io

    from mzc.codecs import backends
    from mzc.codecs.base import as_planes
    from mzc.io.decoding import digest
    from mzc.io.reader import MzcFile
    mz = MzcFile(io.BytesIO(data))
    for i in range(mz.grid.n_chunks):
        block = mz.read(mz.grid.slices(i))
        data = edit_chunk(data, i, body=lambda b, x=block: backends.encode(name, as_planes(x)),
                          params=lambda p, x=block: {"b": name, "d": digest(x)})
    return data
