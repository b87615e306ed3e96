"""Bounded buckets: how a policy update's byte fields cross into the engine, and how the engine reads them back.

vLLM's messages to an out-of-process engine go through msgspec, which refuses any single object of 4 GiB or
more (a 7B merged update is ~15 GB in bf16); one huge message would also need a second copy of the update in
flight. A field is therefore sent as slices of at most ``rollout.sync_bucket_mb`` and reassembled in a
preallocated buffer on the engine side, from which tensors are read without another copy.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator

MIB = 1 << 20


def bucket_bytes(bucket_mb: float) -> int:
    """``rollout.sync_bucket_mb`` in bytes (at least 1)."""
    return max(1, int(bucket_mb * MIB))


def split(data: bytes, size: int) -> Iterator[tuple[int, bytes]]:
    """(offset, slice) pairs of at most ``size`` bytes covering ``data``; an empty field is one empty slice."""
    view = memoryview(data)
    for offset in range(0, max(len(data), 1), size):
        yield offset, bytes(view[offset : offset + size])


class Staging:
    """The buffers of one update being received, one per field; complete only when every byte arrived."""

    def __init__(self) -> None:
        self._buffers: dict[str, bytearray] = {}
        self._received: dict[str, int] = {}

    def put(self, name: str, total: int, offset: int, chunk: bytes) -> None:
        if offset == 0:
            self._buffers[name] = bytearray(total)
            self._received[name] = 0
        buf = self._buffers.get(name)
        if buf is None or len(buf) != total or offset + len(chunk) > total:
            raise ValueError(f"bucket of {name!r} at offset {offset} does not fit the staged {total}-byte field")
        buf[offset : offset + len(chunk)] = chunk
        self._received[name] += len(chunk)

    def take(self, name: str) -> bytearray | None:
        """The complete field (None if it was not sent); raises if any bucket is missing."""
        if name not in self._buffers:
            return None
        buf, got = self._buffers.pop(name), self._received.pop(name)
        if got != len(buf):
            raise ValueError(f"{name}: received {got} of {len(buf)} bytes; a bucket is missing")
        return buf

    def clear(self) -> None:
        self._buffers.clear()
        self._received.clear()


_DTYPES = {
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "I64": "int64",
    "I32": "int32",
    "I16": "int16",
    "I8": "int8",
    "U8": "uint8",
    "BOOL": "bool",
}


def load_tensors(buf: bytearray) -> dict:
    """The tensors of safetensors bytes, as views of ``buf`` (no copy of a possibly multi-GB update)."""
    import torch

    (size,) = struct.unpack("<Q", bytes(buf[:8]))
    header = json.loads(bytes(buf[8 : 8 + size]))
    base, tensors = 8 + size, {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        dtype = getattr(torch, _DTYPES[info["dtype"]])
        flat = (
            torch.frombuffer(buf, dtype=dtype, count=(end - start) // dtype.itemsize, offset=base + start)
            if end > start
            else torch.empty(0, dtype=dtype)
        )
        tensors[name] = flat.reshape(info["shape"])
    return tensors
