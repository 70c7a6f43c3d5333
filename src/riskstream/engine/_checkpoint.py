"""Per-partition checkpoints of a risk worker, written atomically to a local directory.

A checkpoint holds everything a worker needs to resume one ``positions`` partition as if it had never stopped:

- the opaque state blobs of the partition's components (streaming engine, validators, limit monitor), by name;
- the input offsets it reflects (``topic:partition`` → next offset to read), for every ``marketdata.ticks``
  partition and for the positions partition itself;
- the index and end time of the last window it includes;
- the output offsets at that moment (``topic:partition`` → end offset after the window's records were flushed),
  from where a restarted worker reads its own output to learn what was already published ("output fencing",
  see `riskstream.engine._worker`).

File format (one file, ``<directory>/<group>/p<partition>.ckpt``)::

    b"RSCKPT1\\n" | header length (8 bytes, big-endian) | header (JSON, UTF-8) | blob 0 | blob 1 | ...

The header lists every blob's name, length and SHA-256, so a torn or corrupted file is detected on load instead
of silently restoring a wrong state. Saving writes a temporary file in the same directory, fsyncs it, renames it
over the previous checkpoint (`os.replace` is atomic on POSIX) and fsyncs the directory so that the rename
itself survives a power cut. The previous checkpoint is kept as ``p<partition>.ckpt.prev``: if the newest file
cannot be read, `load` falls back to it (recomputing more windows is always correct; restoring a corrupt one is
not).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import struct
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigurationError, StoreError

__all__ = ["Checkpoint", "CheckpointStore", "PartitionLease"]

_MAGIC = b"RSCKPT1\n"
_LENGTH = struct.Struct(">Q")
_SAFE = re.compile(r"^[A-Za-z0-9._-]+$")


@dataclass(frozen=True)
class Checkpoint:
    """The saved state of one positions partition after window ``window`` closed.

    Attributes
    ----------
    group
        Consumer group of the workers (checkpoints of different groups never mix).
    partition
        The ``positions`` partition this state belongs to.
    window
        Index of the last window included (−1: none yet).
    window_end_us
        End of that window, µs since the epoch (UTC); the ``as_of_us`` of its snapshots.
    input_offsets
        ``topic:partition`` → next offset to read, for every input the partition's state reflects.
    output_offsets
        ``topic:partition`` → end offset of each output partition once the window's records were flushed.
    blobs
        Opaque component states by name (``engine``, ``ticks``, ``positions``, ``limits``, ...).
    """

    group: str
    partition: int
    window: int
    window_end_us: int
    input_offsets: Mapping[str, int] = field(default_factory=dict)
    output_offsets: Mapping[str, int] = field(default_factory=dict)
    blobs: Mapping[str, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.group or not _SAFE.match(self.group):
            raise ConfigurationError(
                "group", self.group, "must be non-empty letters, digits, '.', '_' or '-'"
            )
        if int(self.partition) != self.partition or self.partition < 0:
            raise ConfigurationError("partition", self.partition, "must be an integer ≥ 0")
        if int(self.window) != self.window or self.window < -1:
            raise ConfigurationError("window", self.window, "must be an integer ≥ -1")
        for name, offsets in (("input_offsets", self.input_offsets), ("output_offsets", self.output_offsets)):
            for key, offset in offsets.items():
                if ":" not in key or int(offset) != offset or offset < 0:
                    raise ConfigurationError(
                        name, f"{key}={offset}", "expects 'topic:partition' → offset ≥ 0"
                    )
        for name, blob in self.blobs.items():
            if not isinstance(blob, bytes | bytearray):
                raise ConfigurationError("blobs", name, f"state must be bytes, got {type(blob).__name__}")

    def encode(self) -> bytes:
        """The file bytes of this checkpoint (see the module docstring)."""
        names = sorted(self.blobs)
        header = {
            "group": self.group,
            "partition": int(self.partition),
            "window": int(self.window),
            "window_end_us": int(self.window_end_us),
            "input_offsets": {k: int(v) for k, v in sorted(self.input_offsets.items())},
            "output_offsets": {k: int(v) for k, v in sorted(self.output_offsets.items())},
            "blobs": [
                {"name": n, "length": len(self.blobs[n]), "sha256": hashlib.sha256(self.blobs[n]).hexdigest()}
                for n in names
            ],
        }
        head = json.dumps(header, sort_keys=True).encode()
        return b"".join([_MAGIC, _LENGTH.pack(len(head)), head, *(bytes(self.blobs[n]) for n in names)])

    @classmethod
    def decode(cls, data: bytes, *, where: str = "checkpoint") -> Checkpoint:
        """Parse file bytes; raises `StoreError` naming what is wrong when the file is torn or corrupt."""
        if not data.startswith(_MAGIC) or len(data) < len(_MAGIC) + _LENGTH.size:
            raise StoreError(f"{where}: not a riskstream checkpoint (bad magic or truncated header)")
        (n,) = _LENGTH.unpack_from(data, len(_MAGIC))
        start = len(_MAGIC) + _LENGTH.size
        try:
            header = json.loads(data[start : start + n])
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise StoreError(f"{where}: header is not JSON ({exc})") from None
        pos = start + n
        blobs: dict[str, bytes] = {}
        for entry in header.get("blobs", []):
            blob = data[pos : pos + int(entry["length"])]
            if len(blob) != int(entry["length"]) or hashlib.sha256(blob).hexdigest() != entry["sha256"]:
                raise StoreError(f"{where}: blob {entry['name']!r} is truncated or its checksum differs")
            blobs[str(entry["name"])] = blob
            pos += len(blob)
        if pos != len(data):
            raise StoreError(f"{where}: {len(data) - pos} trailing byte(s) after the last blob")
        return cls(
            group=str(header["group"]),
            partition=int(header["partition"]),
            window=int(header["window"]),
            window_end_us=int(header["window_end_us"]),
            input_offsets={str(k): int(v) for k, v in header["input_offsets"].items()},
            output_offsets={str(k): int(v) for k, v in header["output_offsets"].items()},
            blobs=blobs,
        )


class CheckpointStore:
    """Checkpoints of one consumer group in a local directory: ``<root>/<group>/p<partition>.ckpt``.

    Parameters
    ----------
    root
        Directory (created if missing). Workers sharing a group must share it (same machine, or a shared mount
        with POSIX rename semantics) so a partition's checkpoint follows the partition to its new owner.
    group
        The consumer group's name.
    """

    def __init__(self, root: str | os.PathLike[str], group: str) -> None:
        if not group or not _SAFE.match(group):
            raise ConfigurationError("group", group, "must be non-empty letters, digits, '.', '_' or '-'")
        self.group = group
        self.directory = Path(root) / group
        self.directory.mkdir(parents=True, exist_ok=True)

    def path(self, partition: int) -> Path:
        return self.directory / f"p{int(partition)}.ckpt"

    def save(self, checkpoint: Checkpoint) -> Path:
        """Write ``checkpoint`` atomically (temp file, fsync, keep the previous one, rename, fsync the folder)."""
        if checkpoint.group != self.group:
            raise ConfigurationError("group", checkpoint.group, f"this store holds group {self.group!r}")
        target = self.path(checkpoint.partition)
        data = checkpoint.encode()
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            if target.exists():
                # a hard link keeps the previous checkpoint readable while the new one replaces the name
                prev = target.with_name(target.name + ".prev")
                prev_tmp = target.with_name(target.name + ".prev.tmp")
                prev_tmp.unlink(missing_ok=True)
                os.link(target, prev_tmp)
                os.replace(prev_tmp, prev)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return target

    def load(self, partition: int) -> Checkpoint | None:
        """The newest readable checkpoint of ``partition`` (falling back to the previous one), or None."""
        target = self.path(partition)
        errors: list[str] = []
        for path in (target, target.with_name(target.name + ".prev")):
            if not path.exists():
                continue
            try:
                ckpt = Checkpoint.decode(path.read_bytes(), where=str(path))
            except StoreError as exc:
                errors.append(str(exc))
                continue
            if ckpt.group != self.group or ckpt.partition != partition:
                errors.append(f"{path}: holds group {ckpt.group!r} partition {ckpt.partition}")
                continue
            return ckpt
        if errors:
            raise StoreError("no readable checkpoint: " + "; ".join(errors))
        return None

    def try_lease(self, partition: int) -> PartitionLease | None:
        """The exclusive lease of ``partition`` (an advisory ``flock`` on ``p<partition>.lock``), or None while
        another worker holds it.

        A consumer group may hand a partition to a new member before the old one has noticed the rebalance; the
        lease makes the new owner wait until the old one has checkpointed and let go, so two owners never work
        on one partition at once. The kernel drops the lock of a killed process, so a crashed owner never blocks
        its successor.
        """
        path = self.directory / f"p{int(partition)}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return PartitionLease(fd, path)

    def clear(self, partition: int) -> None:
        """Delete the checkpoints of ``partition`` (a fresh start from the beginning of the input)."""
        target = self.path(partition)
        for path in (target, target.with_name(target.name + ".prev")):
            path.unlink(missing_ok=True)


class PartitionLease:
    """The held lease of one partition (see `CheckpointStore.lease`); `release` lets the next owner in."""

    def __init__(self, fd: int, path: Path) -> None:
        self._fd: int | None = fd
        self.path = path

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None
