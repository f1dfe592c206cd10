"""Histograms of extreme tensors: binned in float64, written as VisualDL records, read back by
VisualDL's own reader and served by its own server code."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from visualdl import LogReader
from visualdl.server import lib

from seghw.train.observers.histogram import BUCKETS, bin_values
from seghw.train.observers.visualdl_logger import histogram_record
from seghw.vdl_records import RecordsWriter

F32 = np.float32
ONE_ULP = np.spacing(F32(1))
# name -> values: every case a tensor can be in when a histogram of it is asked for.
EXTREMES = {
    "constant": np.full(100, 0.25, F32),
    "constant zero": np.zeros(64, F32),
    "below float32 resolution": F32(1) + np.arange(5, dtype=F32) * ONE_ULP,  # BatchNorm weights at lr 4e-7
    "two neighbouring floats": np.array([1, np.nextafter(F32(1), F32(2))], F32),
    "plus and minus 1e30": np.array([-1e30, 0, 1e30], F32),
    "constant 1e30": np.full(8, 1e30, F32),
    "float32 extremes": np.array([-np.finfo(F32).max, np.finfo(F32).max], F32),
    "float64 extremes": np.array([-np.finfo(np.float64).max, 0.0, np.finfo(np.float64).max]),
    "constant float64 max": np.full(3, np.finfo(np.float64).max),
    "denormals": np.array([1e-45, 2e-45, 1e-40, -1e-42], F32),
    "float64 denormals": np.array([0.0, 5e-324, 1e-323]),
    "with NaN": np.array([0.1, np.nan, 0.3, np.nan], F32),
    "with inf": np.array([np.inf, -np.inf, 0.5, 0.7], F32),
    "all NaN": np.full(10, np.nan, F32),
    "all inf": np.array([np.inf, -np.inf], F32),
    "empty": np.zeros(0, F32),
    "single element": np.array([3.5], F32),
    "single NaN": np.array([np.nan], F32),
    "float16": np.array([0.5, 0.50048828125, np.inf], np.float16),
    "integers": np.arange(10, dtype=np.int64),
    "2-d": np.eye(4, dtype=F32),
}


def check(values, hist) -> None:
    flat = np.asarray(values, dtype=np.float64).ravel()
    finite = flat[np.isfinite(flat)]
    assert hist.nonfinite == flat.size - finite.size
    if finite.size == 0:
        assert hist.empty and hist.edges.size == 0
        return
    assert hist.counts.dtype == np.int64 and int(hist.counts.sum()) == finite.size
    assert hist.edges.size == hist.counts.size + 1
    assert hist.counts.size in (1, BUCKETS)
    assert np.all(np.isfinite(hist.edges))
    assert np.all(np.diff(hist.edges) > 0)
    assert hist.edges[0] <= finite.min() and finite.max() <= hist.edges[-1]


@pytest.mark.parametrize("name", EXTREMES)
def test_extreme_tensors_bin_without_error(name):
    check(EXTREMES[name], bin_values(EXTREMES[name]))


def test_visualdls_own_binning_fails_where_this_one_does_not():
    # What ended training: np.histogram in the tensor's float32, as VisualDL's add_histogram calls it.
    values = EXTREMES["below float32 resolution"]
    with pytest.raises(ValueError, match="Too many bins for data range"):
        np.histogram(values, bins=BUCKETS)
    hist = bin_values(values)
    assert hist.counts.size == BUCKETS and hist.counts.sum() == values.size


@settings(max_examples=300, deadline=None)
@given(hnp.arrays(
    dtype=st.sampled_from([np.float16, np.float32, np.float64]),
    shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=12),
    elements={"allow_nan": True, "allow_infinity": True, "allow_subnormal": True},
))
def test_any_float_tensor_bins_without_error(values):
    check(values, bin_values(values))


@pytest.fixture
def records(tmp_path):
    run_dir = tmp_path / "logs_11271900"
    run_dir.mkdir()
    return RecordsWriter.create(run_dir, run_dir.name)


def test_visualdl_reads_and_serves_every_extreme_histogram(records):
    tags = {}
    for i, (name, values) in enumerate(EXTREMES.items()):
        record = histogram_record(f"Weights/case{i}", bin_values(values), 1)
        if record is not None:
            records.write([record])
            tags[f"Weights/case{i}"] = name
    assert set(tags.values()) == {n for n, v in EXTREMES.items() if np.isfinite(np.asarray(v, np.float64)).any()}

    reader = LogReader(file_path=str(records.path))
    for tag, name in tags.items():
        hist = bin_values(EXTREMES[name])
        [stored] = reader.get_data("histogram", tag)
        assert list(stored.histogram.hist) == hist.counts.tolist(), name
        assert list(stored.histogram.bin_edges) == hist.edges.tolist(), name
    # What the server sends the browser: strict JSON, one [left, right, count] per bucket.
    served = LogReader(logdir=str(records.path.parent.parent))
    for tag, name in tags.items():
        [[_, step, buckets]] = lib.get_histogram(served, records.path.parent.name, tag)
        json.dumps(buckets, allow_nan=False)
        assert step == 1 and sum(b[2] for b in buckets) == np.isfinite(np.asarray(EXTREMES[name], np.float64)).sum()
