"""Bit-identical exports: torch's parallel reductions (BatchNorm statistics, Conv+BN fusion) sum in
an order that depends on the thread count, so weights can differ in the last bit between two
builds. Building and exporting on one thread makes the bytes of the ONNX reproducible."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def single_thread() -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


ID_RECORD = ".data/serialization_id"


def save_torch(obj: object, path: Any) -> None:
    """torch.save with reproducible bytes.

    torch.save ends its zip with a `.data/serialization_id` record: random in older releases, and in
    newer ones a hash of the record names taken in an order that can differ between machines (pytorch
    issue 184219); torch's writer ignores such a record written by its caller. So the record is
    replaced afterwards by a digest of the other records (their names, CRC-32s and sizes), so the same
    object always gives the same file. Where torch's archive is otherwise reproducible (every record
    stored, no dates: torch 2.x), the record's bytes and their CRC-32 are patched in place (no copy of
    the model); otherwise the archive is rewritten (every record stored, fixed dates, the same order).
    torch.load reads either as usual.
    """
    import io

    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    if not _patch_serialization_id(buf):
        buf = _rewritten(buf)
    with open(path, "wb") as f:
        f.write(buf.getbuffer())


def _id_for(infos: list, size: int) -> bytes:
    """The id record's `size` bytes: a digest of the other records' names, CRC-32s and sizes."""
    import hashlib

    lines = "\n".join(f"{i.filename} {i.CRC:08x} {i.file_size}" for i in infos if not i.filename.endswith(ID_RECORD))
    return hashlib.sha256(lines.encode()).hexdigest().encode()[:size].ljust(size, b"0")


def _patch_serialization_id(buf: Any) -> bool:
    """Replace the id record's bytes and their CRC-32 (in the central directory, and in the local header
    or the data descriptor after the data, wherever torch wrote it) in `buf`, torch's archive. False,
    with nothing changed, where the archive is not laid out as expected: it is rewritten then."""
    import struct
    import zipfile
    import zlib

    with zipfile.ZipFile(buf) as zf:
        infos, cd_entry = zf.infolist(), getattr(zf, "start_dir", None)
    ids = [i for i in infos if i.filename.endswith(ID_RECORD)]
    if len(ids) != 1 or cd_entry is None or any(i.compress_type or i.date_time != (1980, 0, 0, 0, 0, 0) for i in infos):
        return False
    record, view = ids[0], buf.getbuffer()
    try:
        found = _crc_fields(view, infos, record, cd_entry)
        if found is None:
            return False
        start, fields = found
        new = _id_for(infos, record.file_size)
        view[start : start + len(new)] = new
        for at in fields:
            struct.pack_into("<L", view, at, zlib.crc32(new))
        return True
    except struct.error:  # an offset past the end
        return False
    finally:
        view.release()


def _crc_fields(view: Any, infos: list, record: Any, cd_entry: int) -> tuple[int, list[int]] | None:
    """Where the id record's data starts and where its CRC-32 is written (each place checked to hold
    the CRC-32 the central directory gives); None when anything is not where it should be."""
    import struct

    def crc_at(at: int) -> bool:
        return 0 <= at <= len(view) - 4 and struct.unpack_from("<L", view, at)[0] == record.CRC

    for info in infos:  # the record's entry in the central directory
        name = info.orig_filename.encode()
        sig, n, e, c = struct.unpack_from("<4s24xHHH", view, cd_entry)
        if sig != b"PK\x01\x02" or bytes(view[cd_entry + 46 : cd_entry + 46 + n]) != name:
            return None
        if info is record:
            break
        cd_entry += 46 + n + e + c
    sig, flags, local_crc, n, e = struct.unpack_from("<4s2xH6xL8xHH", view, record.header_offset)
    start = record.header_offset + 30 + n + e
    fields = [cd_entry + 16]
    if flags & 0x08:  # a data descriptor after the data: [signature] CRC-32, sizes
        at = start + record.compress_size
        fields.append(at + 4 if bytes(view[at : at + 4]) == b"PK\x07\x08" else at)
    if local_crc or not flags & 0x08:
        fields.append(record.header_offset + 14)
    if sig != b"PK\x03\x04" or record.file_size != record.compress_size or not all(map(crc_at, fields)):
        return None
    return start, fields


def _rewritten(buf: Any) -> Any:
    """The archive rewritten: every record stored, fixed dates, the id record replaced."""
    import io
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(buf) as src, zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as dst:
        infos = src.infolist()
        for info in infos:
            data = src.read(info.filename)
            if info.filename.endswith(ID_RECORD):
                data = _id_for(infos, len(data))
            dst.writestr(zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0)), data)
    return out
