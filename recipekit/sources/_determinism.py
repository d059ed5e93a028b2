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
