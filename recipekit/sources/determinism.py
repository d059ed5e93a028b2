"""Bit-identical exports: torch's parallel reductions (BatchNorm statistics, Conv+BN fusion) sum in
an order that depends on the thread count, so weights can differ in the last bit between two
builds. Building and exporting on one thread makes the bytes of the ONNX reproducible."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def single_thread() -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def save_torch(obj: object, path: object) -> None:
    """torch.save with reproducible bytes.

    torch.save writes a random `.data/serialization_id` into its zip; that one record is replaced by
    a digest of the other records (entries stored, fixed dates, same order), so the same object
    always gives the same file. torch.load reads it as usual.
    """
    import hashlib
    import io
    import zipfile

    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    with zipfile.ZipFile(buf) as src:
        entries = [(i.filename, src.read(i.filename)) for i in src.infolist()]
    digest = hashlib.sha256(b"".join(d for n, d in entries if not n.endswith("serialization_id"))).hexdigest()
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as dst:
        for name, data in entries:
            if name.endswith("serialization_id"):
                data = digest[: len(data)].encode()
            dst.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
