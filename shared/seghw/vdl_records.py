"""VisualDL records files: find, append to, read frame by frame, and trim to a checkpoint on resume.

A records file is a plain sequence of ``[u64 little-endian length][Record protobuf]`` frames with
no checksum, so a killed writer can leave a torn last frame. VisualDL shows only the newest
records file of a folder and never de-duplicates steps: a resumed run must therefore keep
appending to the same file, cut back to what its checkpoint knows.
"""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from seghw.atomic import write_atomic

_HEADER = struct.Struct("<Q")
# A frame larger than this is garbage (a torn header), not a record.
_MAX_FRAME = 256 * 1024 * 1024


def records_files(run_dir: str | Path) -> list[Path]:
    """``vdlrecords.*.log`` files of a run, oldest first (VisualDL serves only the last)."""
    return sorted(Path(run_dir).glob("vdlrecords.*.log"))


def newest_records_file(run_dir: str | Path) -> Path | None:
    files = records_files(run_dir)
    return files[-1] if files else None


class RecordsWriteError(OSError):
    """The records file cannot be written: the curves from here on would be lost."""


class RecordsWriter:
    """Appends VisualDL records (built by VisualDL's own ``visualdl.component.base_component``)
    to a records file, in the frames VisualDL's reader and server read.

    VisualDL's ``LogWriter`` writes on a thread that prints a warning and drops every record it
    cannot write (a full disk), and recreates a deleted run folder to write into, so curves are lost
    without an error. Here a write either lands in the file or raises ``RecordsWriteError``.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @classmethod
    def create(cls, run_dir: str | Path, display_name: str) -> RecordsWriter:
        """A new records file, named as VisualDL names them, starting with the run's display name."""
        from visualdl.component.base_component import meta_data

        writer = cls(Path(run_dir) / f"vdlrecords.{int(time.time()):010d}.log")
        writer._call(lambda: os.close(os.open(writer.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)))
        writer.write([meta_data(display_name=display_name, walltime=now_ms())])
        return writer

    def write(self, records: Iterable) -> None:
        data = b"".join(_HEADER.pack(len(p)) + p for p in (r.SerializeToString() for r in records))
        if data:
            self._call(lambda: self._append(data))

    def sync(self) -> None:
        """Everything written so far is durable once this returns."""
        self._call(lambda: self._with_fd(os.fsync))

    def _append(self, data: bytes) -> None:
        def write_all(fd: int) -> None:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]

        self._with_fd(write_all)

    def _with_fd(self, use: Callable[[int], None]) -> None:
        # Opened by path each time and never created here: a file or run folder that vanished is
        # an error, not a fresh empty file.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        try:
            use(fd)
        finally:
            os.close(fd)

    def _call(self, action: Callable[[], None]) -> None:
        try:
            action()
        except OSError as exc:
            raise RecordsWriteError(f"VisualDL records file {self.path} not written: {exc.strerror or exc}") from exc


def now_ms() -> int:
    """A record's wall time, as VisualDL stamps them."""
    return round(time.time() * 1000)


def read_frames(path: str | Path) -> tuple[list[bytes], int]:
    """Return the complete frames of a records file and the byte length they cover.

    A torn tail (short header, short payload, or a payload that is not a Record) is left out.
    """
    from visualdl.proto import record_pb2

    data = Path(path).read_bytes()
    frames: list[bytes] = []
    pos = 0
    while pos + _HEADER.size <= len(data):
        (length,) = _HEADER.unpack_from(data, pos)
        end = pos + _HEADER.size + length
        if length > _MAX_FRAME or end > len(data):
            break
        payload = data[pos + _HEADER.size : end]
        try:
            record_pb2.Record().ParseFromString(payload)
        except Exception:
            break
        frames.append(payload)
        pos = end
    return frames, pos


def iter_values(path: str | Path) -> Iterator[tuple[str, int, object]]:
    """(tag, step, value) for every value in a records file (torn tail ignored)."""
    from visualdl.proto import record_pb2

    frames, _ = read_frames(path)
    for payload in frames:
        record = record_pb2.Record()
        record.ParseFromString(payload)
        for value in record.values:
            yield value.tag, value.id, value


def trim_records(path: str | Path, keep: Callable[[str, int], bool]) -> tuple[int, int]:
    """Rewrite ``path`` atomically with only the values for which ``keep(tag, step)`` is true.

    Returns (values kept, values dropped). Frames left empty are removed.
    """
    from visualdl.proto import record_pb2

    frames, _ = read_frames(path)
    out: list[bytes] = []
    kept = dropped = 0
    for payload in frames:
        record = record_pb2.Record()
        record.ParseFromString(payload)
        survivors = [v for v in record.values if keep(v.tag, v.id)]
        dropped += len(record.values) - len(survivors)
        kept += len(survivors)
        if not survivors:
            continue
        if len(survivors) == len(record.values):
            out.append(payload)
        else:
            trimmed = record_pb2.Record()
            trimmed.values.extend(survivors)
            out.append(trimmed.SerializeToString())

    def _write(fh) -> None:
        for payload in out:
            fh.write(_HEADER.pack(len(payload)))
            fh.write(payload)

    write_atomic(path, _write)
    return kept, dropped
