"""Trimming VisualDL records for a resume: torn tails, per-tag step limits, appending after."""

from __future__ import annotations

from visualdl import LogReader, LogWriter

from seghw import vdl_records
from seghw.train.observers.visualdl_logger import keep_until


def _write(run_dir, epochs: int, steps_per_epoch: int) -> str:
    with LogWriter(logdir=str(run_dir)) as w:
        for gs in range(1, epochs * steps_per_epoch + 1):
            w.add_scalar("Iter/Loss", 1.0 / gs, gs)
            if gs % steps_per_epoch == 0:
                w.add_scalar("Loss/Train", 1.0 / gs, gs // steps_per_epoch)
        return w.file_name


def _steps(path, tag):
    return [int(v.id) for v in LogReader(file_path=str(path)).get_data("scalar", tag)]


def test_torn_tail_is_dropped(tmp_path):
    path = _write(tmp_path, epochs=2, steps_per_epoch=3)
    data = open(path, "rb").read()
    open(path, "wb").write(data + data[:13])  # a half-written frame, as a kill -9 leaves it
    frames, covered = vdl_records.read_frames(path)
    assert covered == len(data)
    assert len(frames) == 1 + 6 + 2  # meta + 6 iteration points + 2 epoch points


def test_trim_keeps_each_tag_up_to_the_checkpoint(tmp_path):
    path = _write(tmp_path, epochs=3, steps_per_epoch=4)
    open(path, "ab").write(b"\x50\x00\x00")  # torn header
    kept, dropped = vdl_records.trim_records(path, keep_until(epoch=1, global_step=6))
    assert _steps(path, "Iter/Loss") == [1, 2, 3, 4, 5, 6]
    assert _steps(path, "Loss/Train") == [1]
    assert dropped == (12 - 6) + (3 - 1)
    # The writer appends to the same file: one continuous series after the resume.
    with LogWriter(logdir=str(tmp_path), file_name=path.rsplit("/", 1)[-1]) as w:
        for gs in range(7, 9):
            w.add_scalar("Iter/Loss", 0.5, gs)
        w.add_scalar("Loss/Train", 0.5, 2)
    assert _steps(path, "Iter/Loss") == list(range(1, 9))
    assert _steps(path, "Loss/Train") == [1, 2]
    assert len(vdl_records.records_files(tmp_path)) == 1
