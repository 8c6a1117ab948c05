"""Binning event times and sampled signals into aligned trials (pure numpy; times in s, bins in ms).

A trial's window is ``n_bins`` bins of ``dt`` ms starting ``start_ms`` after its alignment event.
Bins are half-open, ``[edge, edge + dt)``: an event on an edge counts in the bin it starts, and
times within ``EDGE_TOL`` bins of an edge count as on it (float rounding of s → ms).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._recordings import RecordingError

EDGE_TOL = 1e-6  # in bins


def check_window(window: Any, dt: float) -> tuple[float, int]:
    """``(start_ms, n_bins)`` of a ``(start_ms, stop_ms)`` window cut into whole ``dt`` bins.

    Examples
    --------
    >>> check_window((-100, 200), 10.0)
    (-100.0, 30)
    """
    try:
        start, stop = (float(v) for v in window)
    except (TypeError, ValueError):
        raise ValueError(f"window must be (start_ms, stop_ms); got {window!r}") from None
    if not (math.isfinite(start) and math.isfinite(stop) and stop > start):
        raise ValueError(
            f"window must be finite (start_ms, stop_ms) with stop > start; got {window}"
        )
    bins = (stop - start) / dt
    if abs(bins - round(bins)) > EDGE_TOL:
        raise ValueError(
            f"window={window} spans {stop - start:g} ms, not a whole number of dt={dt:g} ms bins "
            f"({bins:g}); make stop - start a multiple of dt"
        )
    return start, round(bins)


def _locate(times_s: np.ndarray, event_s: np.ndarray, start_ms: float, dt: float, n_bins: int):
    """(trial, bin, sample) of every sorted time inside a trial's window; a window may overlap."""
    tol_ms = EDGE_TOL * dt
    lo = np.searchsorted(times_s, event_s + (start_ms - tol_ms) / 1000.0, "left")
    hi = np.searchsorted(times_s, event_s + (start_ms + n_bins * dt + tol_ms) / 1000.0, "left")
    n_each = hi - lo
    trial = np.repeat(np.arange(event_s.size), n_each)
    sample = np.arange(n_each.sum()) - np.repeat(np.cumsum(n_each) - n_each - lo, n_each)
    x = ((times_s[sample] - event_s[trial]) * 1000.0 - start_ms) / dt
    k = np.floor(x)
    on_edge = np.abs(x - np.rint(x)) < EDGE_TOL
    k[on_edge] = np.rint(x[on_edge])
    keep = (k >= 0) & (k < n_bins)
    return trial[keep], k[keep].astype(np.int64), sample[keep]


def bin_spike_times(
    spike_times: Sequence[np.ndarray],
    event_s: np.ndarray,
    *,
    start_ms: float,
    dt: float,
    n_bins: int,
) -> np.ndarray:
    """Count each unit's spikes in ``n_bins`` bins of ``dt`` ms from ``start_ms`` after each event.

    Bins are ``[edge, edge + dt)``: a spike on an edge counts in the bin it starts.

    Parameters
    ----------
    spike_times : sequence of numpy.ndarray
        Sorted spike times (s), one array per unit.
    event_s : numpy.ndarray
        ``[B]`` alignment events (s), one per trial.
    start_ms, dt, n_bins
        Window start relative to the event (ms), bin width (ms), number of bins.

    Returns
    -------
    numpy.ndarray
        int64 counts ``[B, n_bins, N]``.

    Examples
    --------
    >>> bin_spike_times([np.array([0.0, 0.005, 0.01, 0.031])], np.array([0.0]),
    ...                 start_ms=0.0, dt=10.0, n_bins=3)[0, :, 0].tolist()
    [2, 1, 0]
    """
    event_s = np.asarray(event_s, dtype=np.float64)
    counts = np.zeros((event_s.size, n_bins, len(spike_times)), dtype=np.int64)
    for n, times in enumerate(spike_times):
        trial, k, _ = _locate(np.asarray(times, np.float64), event_s, start_ms, dt, n_bins)
        flat = np.bincount(trial * n_bins + k, minlength=event_s.size * n_bins)
        counts[:, :, n] = flat.reshape(event_s.size, n_bins)
    return counts


def bin_series(
    timestamps_s: np.ndarray,
    values: np.ndarray,
    event_s: np.ndarray,
    *,
    start_ms: float,
    dt: float,
    n_bins: int,
    name: str = "series",
) -> np.ndarray:
    """Mean of a sampled signal within each bin: ``[n_samples, C]`` → ``[B, n_bins, C]``.

    Raises
    ------
    RecordingError
        If a bin holds no sample (``dt`` below the sampling interval, or a gap in the data).

    Examples
    --------
    >>> bin_series(np.arange(6) * 0.005, np.arange(6.0)[:, None], np.array([0.0]),
    ...            start_ms=0.0, dt=10.0, n_bins=3)[0, :, 0].tolist()
    [0.5, 2.5, 4.5]
    """
    values = np.asarray(values, dtype=np.float64).reshape(len(timestamps_s), -1)
    event_s = np.asarray(event_s, dtype=np.float64)
    trial, k, sample = _locate(np.asarray(timestamps_s, np.float64), event_s, start_ms, dt, n_bins)
    flat = trial * n_bins + k  # sorted: trial-major, and times ascend within a trial
    n_in = np.bincount(flat, minlength=event_s.size * n_bins)
    if (empty := np.flatnonzero(n_in == 0)).size:
        b, t = divmod(int(empty[0]), n_bins)
        period = np.median(np.diff(timestamps_s)) * 1000.0 if len(timestamps_s) > 1 else math.nan
        raise RecordingError(
            f"{name!r} (sampled every {period:.4g} ms) has no sample in {empty.size} of "
            f"{n_in.size} bins of dt={dt:g} ms, first in trial {b}, bin {t}; "
            "use a dt of at least the sampling interval (values are averaged within each bin)"
        )
    sums = np.zeros((n_in.size, values.shape[1]))
    if flat.size:
        starts = np.flatnonzero(np.r_[True, flat[1:] != flat[:-1]])
        sums[flat[starts]] = np.add.reduceat(values[sample], starts, axis=0)
    return (sums / n_in[:, None]).reshape(event_s.size, n_bins, -1)


def select_positions(selection: Any, n: int, what: str) -> np.ndarray:
    """Row positions ``0..n-1`` from a boolean mask of length ``n`` or a sequence of positions.

    Examples
    --------
    >>> select_positions([True, False, True], 3, "trials").tolist()
    [0, 2]
    """
    if selection is None:
        return np.arange(n)
    arr = np.asarray(selection)
    if arr.dtype.kind == "b" and arr.shape == (n,):
        return np.flatnonzero(arr)
    if (
        arr.ndim != 1
        or arr.dtype.kind not in "iu"
        or (arr.size and not (0 <= arr.min() and arr.max() < n))
    ):
        raise ValueError(
            f"{what} must select rows by position (integers 0..{n - 1}) or by a boolean mask of "
            f"length {n}; got {selection!r}"
        )
    if np.unique(arr).size != arr.size:
        raise ValueError(f"{what} selects a row twice: {arr.tolist()}")
    return arr.astype(np.int64)
