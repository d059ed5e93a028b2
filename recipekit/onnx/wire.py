"""What an ONNX file declares (IR version, opsets, graph inputs and outputs with their dims, metadata), read
from the protobuf wire format without the onnx package: plan-time checks run on every build, no-op
ones included, and stay light. Weights and nodes are seeked over, never read.

Field numbers are onnx.proto's. A dim is an int (static), a str (symbolic) or None (unknown); a
negative dim_value (Paddle writes -1 for a dynamic batch) is dynamic, reported as None.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from io import BufferedReader
from pathlib import Path
from typing import Any

Dim = int | str | None

# ModelProto field -> wire type (0 varint, 2 length-delimited)
_MODEL_FIELDS = {1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2, 26: 2}
_MAX_MESSAGE = 1 << 20  # a ValueInfoProto or OperatorSetIdProto larger than this is not one


class NotOnnx(ValueError):
    """The bytes are not an ONNX ModelProto (the message says where)."""


@dataclass
class Tensor:
    name: str
    elem_type: int | None = None  # onnx.TensorProto.DataType value (1 float, 10 float16, ...)
    dims: list[Dim] | None = None  # None: rank unknown


@dataclass
class Header:
    ir_version: int | None = None
    opsets: dict[str, int] = field(default_factory=dict)  # domain ("" = ai.onnx) -> version
    inputs: list[Tensor] = field(default_factory=list)  # graph inputs that are not initializers
    outputs: list[Tensor] = field(default_factory=list)
    metadata: dict[str, str | None] = field(default_factory=dict)  # metadata_props (None: a value over 1 MB, unread)

    @property
    def opset(self) -> int | None:
        return self.opsets.get("", self.opsets.get("ai.onnx"))


def _varint(fh: Any) -> int | None:
    value, shift = 0, 0
    while shift < 70:
        b = fh.read(1)
        if not b:
            return None
        value |= (b[0] & 0x7F) << shift
        if not b[0] & 0x80:
            return value
        shift += 7
    return None


def _fields(fh: Any, end: int) -> Iterator[tuple[int, int, int]]:
    """(field number, wire type, value) up to offset `end`; for length-delimited fields the value is
    the payload's length and the caller reads or skips it (`fh` sits at the payload's start)."""
    while fh.tell() < end:
        tag = _varint(fh)
        if tag is None:
            raise NotOnnx(f"truncated at offset {fh.tell()}")
        number, wire = tag >> 3, tag & 7
        start = fh.tell()
        if wire == 0:
            value = _varint(fh)
        elif wire == 2:
            value = _varint(fh)
            if value is not None and fh.tell() + value > end:
                raise NotOnnx(f"truncated at offset {fh.tell()}")
        elif wire in (1, 5):
            value = int.from_bytes(fh.read(8 if wire == 1 else 4), "little")
        else:
            raise NotOnnx(f"unexpected bytes at offset {start}")
        if value is None:
            raise NotOnnx(f"truncated at offset {fh.tell()}")
        after = fh.tell() + (value if wire == 2 else 0)
        yield number, wire, value
        fh.seek(after)


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _message(fh: Any, length: int) -> Any:
    import io

    if length > _MAX_MESSAGE:
        raise NotOnnx(f"a {length}-byte header field at offset {fh.tell()}")
    return io.BytesIO(fh.read(length))


def _text(fh: Any, length: int) -> str:
    return fh.read(length).decode("utf-8", "replace")


def _dims(shape: Any, end: int) -> list[Dim]:
    out: list[Dim] = []
    for number, _, length in _fields(shape, end):
        if number != 1:
            continue
        dim: Dim = None
        start = shape.tell()
        for n, wire, value in _fields(shape, start + length):
            if n == 1 and wire == 0:
                dim = _signed(value) if _signed(value) >= 0 else None
            elif n == 2 and wire == 2:
                dim = _text(shape, value) or None
        out.append(dim)
    return out


def _tensor_type(fh: Any, end: int, tensor: Tensor) -> None:
    for number, wire, value in _fields(fh, end):
        if number == 1 and wire == 0:
            tensor.elem_type = value
        elif number == 2 and wire == 2:
            tensor.dims = _dims(fh, fh.tell() + value)


def _value_info(fh: Any, length: int) -> Tensor:
    msg = _message(fh, length)
    tensor = Tensor("")
    for number, wire, value in _fields(msg, length):
        if number == 1 and wire == 2:
            tensor.name = _text(msg, value)
        elif number == 2 and wire == 2:
            end = msg.tell() + value
            for n, w, v in _fields(msg, end):
                if n == 1 and w == 2:  # tensor_type
                    _tensor_type(msg, msg.tell() + v, tensor)
    return tensor


def _initializer_name(fh: Any, end: int, number: int) -> str | None:
    """TensorProto.name (8); a SparseTensorProto's is its values' (1) name."""
    for n, wire, value in _fields(fh, end):
        if number == 15 and n == 1 and wire == 2:
            return _initializer_name(fh, fh.tell() + value, 5)
        if number == 5 and n == 8 and wire == 2:
            return _text(fh, value)
    return None


def _graph(fh: Any, end: int, header: Header) -> None:
    inits: set[str] = set()
    inputs: list[Tensor] = []
    for number, wire, value in _fields(fh, end):
        if wire != 2:
            continue
        if number == 11:
            inputs.append(_value_info(fh, value))
        elif number == 12:
            header.outputs.append(_value_info(fh, value))
        elif number in (5, 15):
            name = _initializer_name(fh, fh.tell() + value, number)
            if name:
                inits.add(name)
    header.inputs = [t for t in inputs if t.name not in inits]


def _opset(fh: Any, length: int) -> tuple[str, int]:
    msg, domain, version = _message(fh, length), "", 0
    for number, wire, value in _fields(msg, length):
        if number == 1 and wire == 2:
            domain = _text(msg, value)
        elif number == 2 and wire == 0:
            version = value
    return domain, version


def _entry(fh: Any, end: int) -> tuple[str, str | None]:
    """A StringStringEntryProto; a value longer than _MAX_MESSAGE is skipped (None), not read."""
    key, value = "", None
    for number, wire, n in _fields(fh, end):
        if number == 1 and wire == 2:
            key = _text(fh, n)
        elif number == 2 and wire == 2 and n <= _MAX_MESSAGE:
            value = _text(fh, n)
    return key, value


def _read(fh: BufferedReader, size: int) -> Header:
    header, seen = Header(), set()
    for number, wire, value in _fields(fh, size):
        if number not in _MODEL_FIELDS or _MODEL_FIELDS[number] != wire:
            raise NotOnnx(f"unexpected bytes at offset {fh.tell()}")
        seen.add(number)
        if number == 1:
            header.ir_version = value
        elif number == 8:
            domain, version = _opset(fh, value)
            header.opsets[domain] = version
        elif number == 7:
            _graph(fh, fh.tell() + value, header)
        elif number == 14:
            key, text = _entry(fh, fh.tell() + value)
            header.metadata[key] = text
    if 7 not in seen or 1 not in seen:
        raise NotOnnx("no graph or no IR version")
    return header


def read_header(path: Path) -> Header:
    """The header of the ONNX file at `path`; NotOnnx (with the reason) when it is not one."""
    size = Path(path).stat().st_size
    with open(path, "rb") as fh:
        try:
            return _read(fh, size)
        except NotOnnx as exc:
            raise NotOnnx(f"not an ONNX model ({exc})") from None


def output_dims(path: Path) -> dict[str, list[Dim] | None]:
    """Output name -> its declared dims (None: no shape stored), for the output kinds' plan-time shape rules."""
    return {t.name: t.dims for t in read_header(path).outputs}
