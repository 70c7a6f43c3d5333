"""Checkpoint format of the streaming engine: a JSON header and raw arrays, byte-for-byte deterministic.

Layout::

    b"RSSTREAM" | version (u32 LE) | header length (u64 LE) | header (UTF-8 JSON, sorted keys)
    | array bytes, back to back | SHA-256 of everything before it (32 bytes)

The header holds the scalars and string lists and, under ``"arrays"``, ``[name, dtype, shape, offset, nbytes]``
for each array (C order, little-endian dtypes). The same state always gives the same bytes (no timestamps, sorted
keys), so two checkpoints can be compared with ``==``.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import InvalidFieldError

__all__ = ["STATE_VERSION", "pack_state", "unpack_state"]

MAGIC = b"RSSTREAM"
STATE_VERSION = 2
_DIGEST = 32


def pack_state(header: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> bytes:
    """Serialise ``header`` (JSON-ready) and ``arrays`` (numeric numpy arrays) into checkpoint bytes."""
    table = []
    blobs = []
    offset = 0
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        if a.dtype.byteorder == ">":
            a = a.astype(a.dtype.newbyteorder("<"))
        raw = a.tobytes()
        table.append([name, a.dtype.str, list(a.shape), offset, len(raw)])
        blobs.append(raw)
        offset += len(raw)
    head = json.dumps({**header, "arrays": table}, sort_keys=True, separators=(",", ":")).encode()
    body = MAGIC + struct.pack("<IQ", STATE_VERSION, len(head)) + head + b"".join(blobs)
    return body + hashlib.sha256(body).digest()


def unpack_state(data: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Header and arrays of checkpoint bytes; a damaged or foreign checkpoint raises InvalidFieldError."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InvalidFieldError("state", type(data).__name__, "must be bytes")
    data = bytes(data)
    fixed = len(MAGIC) + 12
    if len(data) < fixed + _DIGEST or not data.startswith(MAGIC):
        raise InvalidFieldError("state", data[:8], "not a streaming-engine checkpoint")
    body, digest = data[:-_DIGEST], data[-_DIGEST:]
    if hashlib.sha256(body).digest() != digest:
        raise InvalidFieldError("state", digest.hex()[:16], "checksum mismatch: the checkpoint is damaged")
    version, head_len = struct.unpack("<IQ", body[len(MAGIC) : fixed])
    if version != STATE_VERSION:
        raise InvalidFieldError("state.version", version, f"this engine reads version {STATE_VERSION}")
    header = json.loads(body[fixed : fixed + head_len].decode())
    base = fixed + head_len
    arrays: dict[str, np.ndarray] = {}
    for name, dtype, shape, offset, nbytes in header.pop("arrays"):
        raw = body[base + offset : base + offset + nbytes]
        arrays[name] = np.frombuffer(raw, dtype=np.dtype(dtype)).reshape(shape).copy()
    return header, arrays
