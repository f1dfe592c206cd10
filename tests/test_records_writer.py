"""The records file: what VisualDL reads, and a write that cannot land raises instead of vanishing."""

from __future__ import annotations

import os
import shutil

import pytest
from visualdl import LogReader

from seghw import vdl_records
from seghw.train.observers.visualdl_logger import scalar_record
from seghw.vdl_records import RecordsWriteError, RecordsWriter


@pytest.fixture
def run_dir(tmp_path):
    path = tmp_path / "logs_11272000"
    path.mkdir()
    return path


def _points(path, tag):
    return [(int(v.id), v.value) for v in LogReader(file_path=str(path)).get_data("scalar", tag)]


def test_visualdl_reads_what_is_written_and_a_reopened_file_appends(run_dir):
    writer = RecordsWriter.create(run_dir, "my run")
    assert vdl_records.records_files(run_dir) == [writer.path]
    writer.write([scalar_record("Loss/Train", 0.5, 1), scalar_record("Loss/Train", 0.25, 2)])
    writer.sync()
    RecordsWriter(writer.path).write([scalar_record("Loss/Train", 0.125, 3)])
    assert _points(writer.path, "Loss/Train") == [(1, 0.5), (2, 0.25), (3, 0.125)]
    [meta] = LogReader(file_path=str(writer.path)).get_data("meta_data", "meta_data_tag")
    assert meta.meta_data.display_name == "my run"


def test_a_records_file_that_vanished_is_an_error_not_a_new_file(run_dir):
    writer = RecordsWriter.create(run_dir, run_dir.name)
    writer.path.unlink()
    with pytest.raises(RecordsWriteError, match=f"{writer.path} not written: No such file"):
        writer.write([scalar_record("Loss/Train", 0.5, 1)])
    assert not writer.path.exists()


def test_a_run_folder_that_vanished_is_not_recreated(run_dir):
    writer = RecordsWriter.create(run_dir, run_dir.name)
    shutil.rmtree(run_dir)
    with pytest.raises(RecordsWriteError, match="No such file"):
        writer.write([scalar_record("Loss/Train", 0.5, 1)])
    with pytest.raises(RecordsWriteError):
        writer.sync()
    assert not run_dir.exists()


def test_a_full_disk_is_an_error(run_dir):
    writer = RecordsWriter.create(run_dir, run_dir.name)
    writer.path.unlink()
    os.symlink("/dev/full", writer.path)  # every write there fails as on a full disk
    with pytest.raises(RecordsWriteError, match="No space left on device"):
        writer.write([scalar_record("Loss/Train", 0.5, 1)])


def test_a_records_file_that_cannot_be_created_is_an_error(tmp_path):
    with pytest.raises(RecordsWriteError, match="not written"):
        RecordsWriter.create(tmp_path / "no such folder", "x")


def test_nothing_to_write_touches_nothing(run_dir):
    writer = RecordsWriter.create(run_dir, run_dir.name)
    size = writer.path.stat().st_size
    writer.write([])
    assert writer.path.stat().st_size == size
