"""An ONNX file's declared outputs (names and dims), read from the protobuf wire format without onnx.

Plan-time checks run on every build, no-op ones included, so they must not import onnx or read a
large file whole: this walks ModelProto -> graph -> output, seeking over everything else (nodes and
initializers), and parses only the small ValueInfoProto messages of the outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

Dims = list[int | str | None]

GRAPH, GRAPH_OUTPUT = 7, 12  # ModelProto.graph, GraphProto.output
NAME, TYPE = 1, 2  # ValueInfoProto.name, ValueInfoProto.type
TENSOR, SHAPE, DIM = 1, 2, 1  # TypeProto.tensor_type, TypeProto.Tensor.shape, TensorShapeProto.dim
DIM_VALUE, DIM_PARAM = 1, 2


def varint(read: Any) -> int | None:
    """One protobuf varint, read a byte at a time through `read` (None at the end of the data)."""
    value, shift = 0, 0
    while shift < 70:
        b = read(1)
        if not b:
            return None
        value |= (b[0] & 0x7F) << shift
        if not b[0] & 0x80:
            return value
        shift += 7
    return None


def _skip(fh: IO[bytes], wire: int) -> bool:
    if wire == 0:
        return varint(fh.read) is not None
    sizes = {1: 8, 5: 4}
    if wire in sizes:
        fh.seek(sizes[wire], 1)
        return True
    if wire == 2:
        n = varint(fh.read)
        if n is None:
            return False
        fh.seek(n, 1)
        return True
    return False


def _fields(data: bytes) -> list[tuple[int, int, Any]]:
    """(field number, wire type, value) of one small message (varints as ints, bytes as bytes)."""
    out, pos = [], 0

    def read(n: int) -> bytes:
        nonlocal pos
        pos += n
        return data[pos - n : pos]

    while pos < len(data):
        tag = varint(read)
        if tag is None:
            break
        wire, value = tag & 7, None
        if wire == 0:
            value = varint(read)
        elif wire == 2:
            value = read(varint(read) or 0)
        elif wire in (1, 5):
            read(8 if wire == 1 else 4)
        else:
            break
        out.append((tag >> 3, wire, value))
    return out


def _dims(type_proto: bytes) -> Dims | None:
    tensor = next((v for f, w, v in _fields(type_proto) if f == TENSOR and w == 2), None)
    shape = next((v for f, w, v in _fields(tensor or b"") if f == SHAPE and w == 2), None)
    if shape is None:
        return None
    dims: Dims = []
    for f, w, dim in _fields(shape):
        if f == DIM and w == 2:
            parts = {k: v for k, _, v in _fields(dim)}
            value = parts.get(DIM_VALUE)
            value = value - (1 << 64) if value is not None and value >= 1 << 63 else value  # int64 on the wire
            if value is not None and value >= 0:
                dims.append(int(value))
            else:
                dims.append((parts.get(DIM_PARAM) or b"").decode() or None)
    return dims


def _messages(fh: IO[bytes], end: int, wanted: int) -> list[bytes]:
    """The length-delimited fields numbered `wanted` between here and `end`, seeking over the rest."""
    out = []
    while fh.tell() < end:
        tag = varint(fh.read)
        if tag is None:
            break
        if tag >> 3 == wanted and tag & 7 == 2:
            n = varint(fh.read) or 0
            out.append(fh.read(n))
        elif not _skip(fh, tag & 7):
            break
    return out


def output_dims(path: Path) -> dict[str, Dims | None]:
    """Output name -> its declared dims (int, a symbolic name, or None unknown); None: no shape stored."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        while fh.tell() < size:
            tag = varint(fh.read)
            if tag is None:
                return {}
            if tag >> 3 == GRAPH and tag & 7 == 2:
                n = varint(fh.read) or 0
                outs = _messages(fh, fh.tell() + n, GRAPH_OUTPUT)
                return {_name(o): _dims(_type(o)) for o in outs}
            if not _skip(fh, tag & 7):
                return {}
    return {}


def _name(value_info: bytes) -> str:
    return next((v.decode() for f, w, v in _fields(value_info) if f == NAME and w == 2), "")


def _type(value_info: bytes) -> bytes:
    return next((v for f, w, v in _fields(value_info) if f == TYPE and w == 2), b"")
