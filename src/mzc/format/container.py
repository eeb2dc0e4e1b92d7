"""The .mzc container: bytes only (spec/FORMAT.md). Knows nothing of numpy, codecs or TIFF.

Every record carries a CRC-32C; the index and a fixed footer at the end let a region reader touch only the header,
the index and the chunks it needs.
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterator

import google_crc32c
import msgpack

from ..errors import MzcError

MAGIC = b"\x89MZC\r\n\x1a\n"
END_MAGIC = b"MZCEND\r\n"
MAJOR, MINOR = 1, 0
PREAMBLE_SIZE = 12
FOOTER_SIZE = 32
RECORD_OVERHEAD = 16
INDEX_ENTRY = struct.Struct("<4sIQQ")
FOOTER_HEAD = struct.Struct("<QQBBH")

HEAD, DATA, INDX, REPORT = b"HEAD", b"DATA", b"INDX", b"rEPT"
KNOWN_CRITICAL = {HEAD, DATA, INDX}

MAX_HEADER = 16 << 20
MAX_INDEX = 256 << 20
MAX_ANCILLARY = 64 << 20
MAX_DEPTH = 32  # msgpack nesting (spec section 8): deeper structures are corrupt, never recursed into


def crc32c(data: bytes) -> int:
    return google_crc32c.value(bytes(data))


def is_critical(rtype: bytes) -> bool:
    return rtype[:1].isupper()


def pack_msg(obj) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def unpack_msg(data: bytes, what: str):
    try:
        value = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception as exc:  # noqa: BLE001 - msgpack raises several unrelated types
        raise MzcError(f"corrupt {what}: not valid msgpack ({exc})") from None
    check_depth(value, what)
    return value


def check_depth(value, what: str) -> None:
    """Refuse structures nested deeper than MAX_DEPTH (walked without recursion: they must not crash the check)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (list, tuple, dict)):
            if depth > MAX_DEPTH:
                raise MzcError(f"corrupt {what}: nested deeper than {MAX_DEPTH} levels")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


def record_bytes(rtype: bytes, payload: bytes) -> bytes:
    head = rtype + struct.pack("<Q", len(payload))
    return head + payload + struct.pack("<I", crc32c(head + payload))


def pack_chunk(index: int, params: dict, body: bytes) -> bytes:
    meta = pack_msg({"i": index, "p": params})
    return struct.pack("<I", len(meta)) + meta + body


def unpack_chunk(payload: bytes, expected_index: int) -> tuple[dict, memoryview]:
    view = memoryview(payload)
    if len(view) < 4:
        raise MzcError(f"corrupt chunk {expected_index}: payload too short")
    (n,) = struct.unpack_from("<I", view)
    if 4 + n > len(view):
        raise MzcError(f"corrupt chunk {expected_index}: meta length {n} exceeds payload")
    meta = unpack_msg(bytes(view[4:4 + n]), f"chunk {expected_index} meta")
    if not isinstance(meta, dict) or type(meta.get("i")) is not int or meta["i"] != expected_index \
            or not isinstance(meta.get("p"), dict):
        raise MzcError(f"corrupt chunk {expected_index}: meta does not name this chunk")
    return meta["p"], view[4 + n:]


@dataclass(frozen=True)
class Entry:
    rtype: bytes
    offset: int
    length: int


class Writer:
    """Append-only writer: HEAD first, then chunks/ancillary records, then close() writes INDX and footer."""

    def __init__(self, fh: BinaryIO, header: dict, room: int = 0):
        """`room`: spare bytes in the HEAD (key `room`) so that a final header can replace it in place later."""
        self._fh = fh
        self._entries: list[Entry] = []
        self._pos = 0
        self._chunks_written = 0
        self._write_raw(MAGIC + bytes([MAJOR, MINOR, 0, 0]))
        payload = pack_msg(dict(header, format=[MAJOR, MINOR], **({"room": bytes(room)} if room else {})))
        if len(payload) > MAX_HEADER:
            raise MzcError(f"header too large ({len(payload)} bytes > {MAX_HEADER})")
        self.write_record(HEAD, payload)
        self.head_length = len(payload)

    @classmethod
    def resume(cls, fh: BinaryIO, head_length: int, chunks: list[tuple[int, int]]) -> "Writer":
        """A writer positioned after records already in `fh`: the HEAD (total length) and DATA (offset, length)."""
        self = cls.__new__(cls)
        self._fh = fh
        self._entries = [Entry(HEAD, PREAMBLE_SIZE, head_length)] + [Entry(DATA, o, n) for o, n in chunks]
        self._chunks_written = len(chunks)
        self._pos = chunks[-1][0] + chunks[-1][1] if chunks else PREAMBLE_SIZE + head_length
        fh.seek(self._pos)
        return self

    @property
    def position(self) -> int:
        return self._pos

    def _write_raw(self, data: bytes) -> None:
        self._fh.write(data)
        self._pos += len(data)

    def write_record(self, rtype: bytes, payload: bytes) -> None:
        rec = record_bytes(rtype, payload)
        self._entries.append(Entry(rtype, self._pos, len(rec)))
        self._write_raw(rec)

    def write_chunk(self, index: int, params: dict, body: bytes) -> None:
        if index != self._chunks_written:
            raise ValueError(f"chunks must be written in order: got {index}, expected {self._chunks_written}")
        self.write_record(DATA, pack_chunk(index, params, body))
        self._chunks_written += 1

    def size_after(self, payload_length: int) -> int:
        """The final file size if one more record of this payload length is written before close()."""
        entries = len(self._entries) + 1
        index_record = RECORD_OVERHEAD + 8 + entries * INDEX_ENTRY.size
        return self._pos + RECORD_OVERHEAD + payload_length + index_record + FOOTER_SIZE

    def finish(self, report_for: Callable[[int], bytes]) -> int:
        """Write the report record, index and footer; return the file size.

        `report_for(size)` packs the report for a file of `size` bytes; a report states the file's final size, which
        includes the report itself, so the size is iterated to its fixed point (one or two rounds)."""
        size = self._pos
        for _ in range(8):
            payload = report_for(size)
            if self.size_after(len(payload)) == size:
                break
            size = self.size_after(len(payload))
        else:
            raise MzcError("internal error: the report's stated size does not settle")
        self.write_record(REPORT, payload)
        if self.close() != size:
            raise MzcError("internal error: report size mismatch")
        return size

    def rewrite_head(self, header: dict) -> None:
        """Replace the HEAD written with `room` by `header`, padded to exactly the same length (spec section 2.4)."""
        rewrite_head(self._fh, header, self.head_length)

    def close(self) -> int:
        """Write index and footer; return the file size."""
        payload = struct.pack("<Q", len(self._entries)) + b"".join(
            INDEX_ENTRY.pack(e.rtype, 0, e.offset, e.length) for e in self._entries)
        index_offset = self._pos
        rec = record_bytes(INDX, payload)
        self._write_raw(rec)
        head = FOOTER_HEAD.pack(index_offset, len(rec), MAJOR, MINOR, 0)
        self._write_raw(head + struct.pack("<I", crc32c(head)) + END_MAGIC)
        return self._pos


class Reader:
    """Random-access reader. Opening reads preamble, footer, index and header; chunks are read on demand."""

    def __init__(self, fh: BinaryIO, size: int | None = None):
        self._fh = fh
        if size is None:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
        self.size = size
        self._read_preamble()
        self._read_footer()
        self.entries = self._read_index()
        self._check_layout()
        self.header = self._read_header()
        self.data_entries = [e for e in self.entries if e.rtype == DATA]
        unknown = [e.rtype for e in self.entries if is_critical(e.rtype) and e.rtype not in KNOWN_CRITICAL]
        if unknown:
            raise MzcError(f"unknown critical record type {unknown[0]!r}: file needs a newer mzc")
        n_chunks = self.header.get("n_chunks")
        if n_chunks != len(self.data_entries):
            raise MzcError(f"corrupt file: header declares {n_chunks} chunks, index lists {len(self.data_entries)}")

    def _pread(self, offset: int, length: int) -> bytes:
        self._fh.seek(offset)
        data = self._fh.read(length)
        if len(data) != length:
            raise MzcError("truncated .mzc file")
        return data

    def _read_preamble(self) -> None:
        if self.size < PREAMBLE_SIZE:
            raise MzcError("not an .mzc file (too short)")
        pre = self._pread(0, PREAMBLE_SIZE)
        if pre[:8] != MAGIC:
            raise MzcError("not an .mzc file (bad magic)")
        self.version = (pre[8], pre[9])
        if pre[8] != MAJOR:
            raise MzcError(f"unsupported .mzc format major version {pre[8]} (this mzc reads {MAJOR}.x)")
        if pre[10:12] != b"\0\0":
            raise MzcError("corrupt preamble: reserved bytes are not zero")

    def _read_footer(self) -> None:
        if self.size < PREAMBLE_SIZE + FOOTER_SIZE:
            raise MzcError("truncated .mzc file (no footer)")
        foot = self._pread(self.size - FOOTER_SIZE, FOOTER_SIZE)
        if foot[24:] != END_MAGIC:
            raise MzcError("truncated .mzc file (footer missing)")
        (crc,) = struct.unpack_from("<I", foot, 20)
        if crc != crc32c(foot[:20]):
            raise MzcError("corrupt footer: checksum mismatch")
        index_offset, index_length, major, minor, reserved = FOOTER_HEAD.unpack_from(foot)
        if (major, minor) != self.version or reserved:
            raise MzcError("corrupt file: footer version does not match preamble")
        if index_offset + index_length != self.size - FOOTER_SIZE or index_offset < PREAMBLE_SIZE:
            raise MzcError("corrupt footer: index position out of range")
        self._index_offset, self._index_length = index_offset, index_length

    def read_record(self, entry: Entry, cap: int | None = None) -> bytes:
        """Read one record, check its framing and CRC, return the payload."""
        if entry.length < RECORD_OVERHEAD or entry.offset + entry.length > self.size:
            raise MzcError(f"corrupt index: record {entry.rtype!r} at {entry.offset} out of range")
        if cap is not None and entry.length - RECORD_OVERHEAD > cap:
            raise MzcError(f"corrupt file: {entry.rtype.decode('latin1')} record of {entry.length} bytes exceeds "
                           f"cap {cap}")
        raw = self._pread(entry.offset, entry.length)
        rtype, (length,) = raw[:4], struct.unpack_from("<Q", raw, 4)
        if rtype != entry.rtype or length != entry.length - RECORD_OVERHEAD:
            raise MzcError(f"corrupt record at offset {entry.offset}: framing does not match the index")
        (crc,) = struct.unpack_from("<I", raw, entry.length - 4)
        if crc != crc32c(raw[:-4]):
            raise MzcError(f"corrupt {rtype.decode('latin1')} record at offset {entry.offset}: checksum mismatch")
        return raw[12:-4]

    def _read_index(self) -> list[Entry]:
        payload = self.read_record(Entry(INDX, self._index_offset, self._index_length), cap=MAX_INDEX)
        if len(payload) < 8:
            raise MzcError("corrupt index: too short")
        (count,) = struct.unpack_from("<Q", payload)
        if len(payload) != 8 + count * INDEX_ENTRY.size:
            raise MzcError("corrupt index: entry count does not match its length")
        entries = []
        for k in range(count):
            rtype, reserved, offset, length = INDEX_ENTRY.unpack_from(payload, 8 + k * INDEX_ENTRY.size)
            if reserved or not rtype.isalpha() or not rtype.isascii():
                raise MzcError("corrupt index: bad entry")
            entries.append(Entry(rtype, offset, length))
        return entries

    def _check_layout(self) -> None:
        pos = PREAMBLE_SIZE
        for e in self.entries:
            if e.offset != pos or e.length < RECORD_OVERHEAD:
                raise MzcError("corrupt index: records are not contiguous")
            pos += e.length
        if pos != self._index_offset:
            raise MzcError("corrupt index: records do not end at the index")
        if not self.entries or self.entries[0].rtype != HEAD or sum(e.rtype == HEAD for e in self.entries) != 1:
            raise MzcError("corrupt file: HEAD must be the first and only header record")
        if any(e.rtype == INDX for e in self.entries) or sum(e.rtype == REPORT for e in self.entries) > 1:
            raise MzcError("corrupt file: a second index or report record")

    def _read_header(self) -> dict:
        header = unpack_msg(self.read_record(self.entries[0], cap=MAX_HEADER), "header")
        if not isinstance(header, dict):
            raise MzcError("corrupt header: not a map")
        if header.get("format") != list(self.version):
            raise MzcError("corrupt header: format version does not match preamble")
        return header

    def chunk_payload(self, index: int, cap: int) -> tuple[dict, memoryview]:
        if not 0 <= index < len(self.data_entries):
            raise MzcError(f"chunk {index} does not exist")
        return unpack_chunk(self.read_record(self.data_entries[index], cap=cap), index)

    def ancillary(self, rtype: bytes) -> bytes | None:
        for e in self.entries:
            if e.rtype == rtype:
                return self.read_record(e, cap=MAX_ANCILLARY)
        return None

    def iter_records(self) -> Iterator[tuple[Entry, bytes]]:
        for e in self.entries:
            yield e, self.read_record(e, cap=MAX_HEADER if e.rtype == HEAD else None if is_critical(e.rtype)
                                      else MAX_ANCILLARY)


def rewrite_head(fh: BinaryIO, header: dict, length: int) -> None:
    """Rewrite the HEAD record at offset 12 with `header`, padded (key `room`) to its payload `length`."""
    base = pack_msg(dict(header, format=[MAJOR, MINOR], room=b""))
    for pad in range(max(0, length - len(base) - 8), length - len(base) + 1):
        payload = pack_msg(dict(header, format=[MAJOR, MINOR], room=bytes(pad)))
        if len(payload) == length:
            break
    else:
        raise MzcError("internal error: the final header does not fit the room left for it")
    end = fh.tell()
    fh.seek(PREAMBLE_SIZE)
    fh.write(record_bytes(HEAD, payload))
    fh.seek(end)


def overhead(header_bytes: int, report_bytes: int, n_chunks: int, chunk_meta_bytes: int) -> int:
    """Bytes a file spends besides its chunk bodies: preamble, HEAD, one DATA record per chunk (with its meta),
    the report, the index (an entry per record) and the footer. Rate control subtracts it from a ratio's budget."""
    records = 2 + n_chunks  # HEAD, REPORT, DATA...
    index = RECORD_OVERHEAD + 8 + records * INDEX_ENTRY.size
    per_chunk = RECORD_OVERHEAD + 4 + chunk_meta_bytes
    return PREAMBLE_SIZE + 2 * RECORD_OVERHEAD + header_bytes + report_bytes + n_chunks * per_chunk + index \
        + FOOTER_SIZE


def chunk_meta_bytes(index: int, params: dict) -> int:
    """Length of one chunk's meta map as pack_chunk writes it."""
    return len(pack_msg({"i": index, "p": params}))


def record_at(data: bytes, pos: int) -> tuple[bytes, bytes, int] | None:
    """(type, payload, total length) of an intact record at `pos` of `data`, or None (cut short or damaged)."""
    if pos + RECORD_OVERHEAD > len(data):
        return None
    rtype, length = data[pos:pos + 4], struct.unpack("<Q", data[pos + 4:pos + 12])[0]
    end = pos + 12 + length + 4
    if end > len(data):
        return None
    if struct.unpack("<I", data[end - 4:end])[0] != crc32c(data[pos:end - 4]):
        return None
    return rtype, data[pos + 12:end - 4], end - pos


def is_mzc(source) -> bool:
    """Whether a path or binary file object starts with the .mzc magic (its position is kept)."""
    if isinstance(source, (str, os.PathLike)):
        try:
            with open(source, "rb") as fh:
                return fh.read(len(MAGIC)) == MAGIC
        except OSError:
            return False
    where = source.tell()
    try:
        return source.read(len(MAGIC)) == MAGIC
    finally:
        source.seek(where)
