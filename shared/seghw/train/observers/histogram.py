"""Histograms of any tensor, binned here in float64 and handed to VisualDL already binned.

VisualDL's ``add_histogram`` calls ``np.histogram(values, bins=30)`` in the tensor's own dtype:
a float32 tensor whose values span fewer than 30 float32 steps (BatchNorm weights after a few
steps at a tiny learning rate) raises "Too many bins for data range", and NaN or inf values raise
too. Here the edges are computed in float64 from the finite values only, never by subtracting
the extremes (``hi - lo`` overflows for values near the float64 limit), and the non-finite values
are counted instead of binned.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BUCKETS = 30
_MAX = float(np.finfo(np.float64).max)


@dataclass(frozen=True)
class Histogram:
    counts: np.ndarray  # int64, one per bucket; empty when no value was finite
    edges: np.ndarray  # float64, finite and strictly increasing, len(counts) + 1
    nonfinite: int  # NaN and ±inf values left out

    @property
    def empty(self) -> bool:
        return self.counts.size == 0


def bin_values(values, buckets: int = BUCKETS) -> Histogram:
    flat = np.asarray(values, dtype=np.float64).ravel()
    finite = np.isfinite(flat)
    kept = flat[finite]
    nonfinite = int(flat.size - kept.size)
    if kept.size == 0:
        return Histogram(np.zeros(0, np.int64), np.zeros(0, np.float64), nonfinite)
    lo, hi = float(kept.min()), float(kept.max())
    t = np.linspace(0.0, 1.0, buckets + 1)
    edges = lo * (1.0 - t) + hi * t
    edges[0], edges[-1] = lo, hi
    if not np.all(np.diff(edges) > 0):
        # Constant, or a range below float64 resolution: one bucket around the value, as
        # TensorBoard draws a constant tensor, wide enough to be a bucket at any magnitude.
        centre = lo / 2 + hi / 2
        half = max(0.5, abs(centre) / 1024)
        edges = np.array([max(centre - half, -_MAX), min(centre + half, _MAX)])
    counts, _ = np.histogram(kept, bins=edges)
    return Histogram(counts.astype(np.int64), edges, nonfinite)
