"""VisualDL records files: find, read frame by frame, and trim to a checkpoint on resume.

A records file is a plain sequence of ``[u64 little-endian length][Record protobuf]`` frames with
no checksum, so a killed writer can leave a torn last frame. VisualDL shows only the newest
records file of a folder and never de-duplicates steps: a resumed run must therefore keep
appending to the same file, cut back to what its checkpoint knows.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
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
