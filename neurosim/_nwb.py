"""NWB in and out: a Units table's spike times (or a TimeSeries) binned into aligned trials, and
recordings written back as NWB spike times that bin to the same counts.

pynwb is the optional ``nwb`` extra: it is imported inside the functions that need it. Times in
NWB files are seconds; windows, ``dt`` and the ``time`` coordinate of a recording are ms.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ._binning import EDGE_TOL, bin_series, bin_spike_times, check_window, select_positions
from ._nwb_export import export_nwb as export_nwb
from ._recordings import RecordingError, make_recording

INSTALL_HINT = "pip install 'neurosim[nwb]'"
_UNIT_SKIP = ("spike_times", "obs_intervals")


class RecordingWarning(UserWarning):
    """Trials left out while loading a recording; ``attrs['excluded']`` lists each and why."""


def require_pynwb() -> Any:
    """Import pynwb, or say how to install it.

    Examples
    --------
    >>> require_pynwb().__name__
    'pynwb'
    """
    try:
        import pynwb
    except ImportError as err:
        raise ImportError(f"NWB files need the optional package pynwb: {INSTALL_HINT}") from err
    return pynwb


def _plain(values: Any, n: int) -> np.ndarray | None:
    """One number, bool or string per row (containers by name), or None."""
    if isinstance(values, pd.DataFrame) or len(values) != n:
        return None
    if not isinstance(values, list):  # read from a file: an array
        arr = np.asarray(values)
        if arr.ndim != 1 or arr.dtype.kind in "biufU":
            return arr if arr.ndim == 1 else None
        values = list(arr)
    if all(isinstance(v, bool | int | float | np.bool_ | np.number) for v in values):
        return np.array(values)
    items = [v.decode() if isinstance(v, bytes) else getattr(v, "name", v) for v in values]
    return np.array(items, dtype=str) if all(isinstance(v, str) for v in items) else None


def _table_columns(table: Any, skip: Sequence[str], what: str) -> tuple[dict, list[dict]]:
    """Plain columns of an hdmf DynamicTable, and an ``excluded`` entry for each other column."""
    n, columns, skipped = len(table.id), {}, []
    for name in table.colnames:
        if name in skip:
            continue
        col = table[name]
        kind = type(col).__name__
        values = None if kind in ("VectorIndex", "DynamicTableRegion") else _plain(col[:], n)
        if values is None:
            why = "not one plain value (number, bool or string) per row"
            skipped.append({"what": f"{what} column {name!r}", "why": f"{why} ({kind})"})
        else:
            columns[name] = values
        if name == "electrode_group" and values is not None and "location" not in table.colnames:
            columns["location"] = np.array([str(g.location) for g in col[:]], dtype=str)
    return columns, skipped


def spike_trains(units: Any) -> list[np.ndarray]:
    """Each unit's spike times (s) from an NWB Units table, after checking them.

    Raises
    ------
    RecordingError
        If the ragged index does not fit the data, or a unit's times are NaN/inf or unsorted
        (naming the unit by its row and id).
    """
    if "spike_times" not in units.colnames:
        raise RecordingError(
            f"the Units table has no 'spike_times' column; it has {list(units.colnames)}"
        )
    data = np.asarray(units.spike_times.data[:], dtype=np.float64)
    index = np.asarray(units.spike_times_index.data[:], dtype=np.int64)
    ids, where = np.asarray(units.id[:]), "Units table 'spike_times_index'"
    if index.shape != ids.shape:
        raise RecordingError(f"{where} has {index.size} entries for {ids.size} units (one each)")
    if index.size and (index[0] < 0 or (np.diff(index) < 0).any() or index[-1] != data.size):
        bad = np.flatnonzero(np.diff(np.r_[0, index]) < 0)
        raise RecordingError(
            f"{where} must rise from 0 to len(spike_times)={data.size} (ragged index); it is "
            f"{index[:8].tolist()}{'...' * (index.size > 8)}"
            + (f", decreasing at unit row {bad[0]} (id {ids[bad[0]]})" if bad.size else "")
        )
    trains, problems = np.split(data, index[:-1]) if index.size else [], []
    for row, times in enumerate(trains):
        unit = f"unit row {row} (id {ids[row]})"
        if not np.isfinite(times).all():
            problems.append(f"spike times of {unit} hold NaN or inf")
        elif (drop := np.flatnonzero(np.diff(times) < 0)).size:
            j = drop[0]
            problems.append(
                f"spike times of {unit} are not sorted: spike {j} at {times[j]:.6g} s comes "
                f"before spike {j + 1} at {times[j + 1]:.6g} s"
            )
    if problems:
        raise RecordingError("invalid spike times: " + "; ".join(problems), problems)
    return trains


def _series_path(obj: Any) -> str:
    names = []
    while obj is not None and obj.parent is not None:
        names.append(obj.name)
        obj = obj.parent
    return "/".join(reversed(names))


def find_series(nwbfile: Any, name: str) -> Any:
    """The TimeSeries called ``name`` (or at path ``module/name``) anywhere in the file."""
    pynwb = require_pynwb()
    found = [o for o in nwbfile.all_children() if isinstance(o, pynwb.TimeSeries)]
    hits = [o for o in found if name in (o.name, _series_path(o))]
    if len(hits) != 1:
        paths = sorted(_series_path(o) for o in found)
        why = "several TimeSeries are called" if hits else "no TimeSeries called"
        raise RecordingError(f"{why} {name!r} in the NWB file; its time series are {paths}")
    return hits[0]


def sampling_interval(times: np.ndarray, rate: float | None = None) -> float:
    """Seconds between samples: ``1 / rate``, else the median step (0 for one sample)."""
    return 1.0 / rate if rate else float(np.median(np.diff(times))) if times.size > 1 else 0.0


def series_values(series: Any) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """``(timestamps_s [n], values [n, C], extent_s)`` of a TimeSeries in its units, checked.

    Each sample stands for the sampling interval around it, so the series covers
    ``[first - interval / 2, last + interval / 2]``.
    """
    times = np.asarray(series.get_timestamps(), dtype=np.float64)
    values = np.asarray(series.get_data_in_units(), dtype=np.float64)
    values = values.reshape(len(values), -1) if values.ndim <= 2 else None
    if values is None or len(values) != times.size:
        shape = np.shape(series.data)
        raise RecordingError(
            f"series {series.name!r}: data {shape} must be [time] or [time, channel], one row "
            f"per timestamp ({times.size})"
        )
    if not times.size or not np.isfinite(times).all() or (np.diff(times) < 0).any():
        raise RecordingError(
            f"series {series.name!r}: timestamps must be finite, sorted, not empty"
        )
    if not np.isfinite(values).all():
        rows = np.flatnonzero(~np.isfinite(values).all(axis=1))
        raise RecordingError(
            f"series {series.name!r} holds NaN or inf at samples {rows[:5].tolist()} "
            f"({rows.size} in all)"
        )
    period = sampling_interval(times, series.rate)
    return times, values, (times[0] - period / 2, times[-1] + period / 2)


def _default_window(df: pd.DataFrame, ev: np.ndarray, align_to: str, dt: float):
    """The trials' own extent around the event, when every trial agrees on it."""
    ok = np.isfinite(ev)
    lo = (df["start_time"].to_numpy(np.float64)[ok] - ev[ok]) * 1000.0
    hi = (df["stop_time"].to_numpy(np.float64)[ok] - ev[ok]) * 1000.0
    if lo.size == 0:
        return 0.0, 1  # every trial lacks its event; reported as excluded below
    if np.ptp(lo) > EDGE_TOL * dt or np.ptp(hi) > EDGE_TOL * dt:
        raise ValueError(
            f"trials run from {lo.min():g}..{lo.max():g} ms to {hi.min():g}..{hi.max():g} ms "
            f"around {align_to!r}: pass window=(start_ms, stop_ms) to cut them all alike"
        )
    on_edge = abs(lo[0] / dt - np.rint(lo[0] / dt)) < EDGE_TOL
    start = float(np.rint(lo[0] / dt) * dt) if on_edge else round(float(lo[0]), 6)  # ns
    return start, max(1, math.floor((hi[0] - start) / dt + EDGE_TOL))


def _unit_source(nwbfile: Any, series: str | None, dt: float | None, kind: str | None):
    """(data, unit columns, excluded columns, extent (s), dt, kind, what) for spikes or a series."""
    if series is not None:
        ts = find_series(nwbfile, series)
        times, values, extent = series_values(ts)
        rois = getattr(ts, "rois", None)
        ids = np.asarray(rois.table.id[:])[np.asarray(rois.data[:])] if rois is not None else None
        ids = ids if ids is not None and ids.size == values.shape[1] else np.arange(values.shape[1])
        dt = dt if dt is not None else sampling_interval(times, ts.rate) * 1000.0
        return (
            (times, values),
            {"unit_id": ids},
            [],
            extent,
            dt,
            kind or "rates",
            f"series {series!r}",
        )
    if nwbfile.units is None:
        raise RecordingError(
            "the NWB file has no Units table (nwbfile.units) to bin spike times from; for "
            f"continuous data name one of its time series with series=: {_all_series(nwbfile)}"
        )
    if kind not in (None, "counts"):
        raise ValueError(f"kind={kind!r}: spike times bin to counts; use kind='counts' or None")
    if dt is None:
        raise ValueError("dt (ms) is required to bin spike times: pass e.g. dt=10.0")
    trains = spike_trains(nwbfile.units)
    columns, skipped = _table_columns(nwbfile.units, _UNIT_SKIP, "units")
    edges = [t[i] for t in trains if t.size for i in (0, -1)]
    extent = (min([0.0, *edges]), max([0.0, *edges]))
    columns = {"unit_id": np.asarray(nwbfile.units.id[:]), **columns}
    return trains, columns, skipped, extent, dt, "counts", "recording"


def _all_series(nwbfile: Any) -> list[str]:
    pynwb = require_pynwb()
    return sorted(
        _series_path(o) for o in nwbfile.all_children() if isinstance(o, pynwb.TimeSeries)
    )


def _excluded_trials(df, ev, w0, w1, extents, unit_obs, tol, align_to) -> list[list[str]]:
    reasons: list[list[str]] = [[] for _ in range(len(df))]
    for b in np.flatnonzero(~np.isfinite(ev)):
        reasons[b].append(f"its {align_to!r} is {ev[b]} (no event to align to)")
    for what, lo, hi in extents:
        for b in np.flatnonzero(np.isfinite(ev) & ((w0 < lo - tol) | (w1 > hi + tol))):
            reasons[b].append(
                f"its window [{w0[b]:.6g}, {w1[b]:.6g}) s reaches outside the {what} "
                f"[{lo:.6g}, {hi:.6g}] s"
            )
    unseen: dict[int, list] = {}
    for unit_id, iv in unit_obs:
        covered = ((iv[:, :1] <= w0 + tol) & (w1 - tol <= iv[:, 1:])).any(axis=0)
        for b in np.flatnonzero(np.isfinite(ev) & ~covered):
            unseen.setdefault(b, []).append(unit_id)
    for b, ids in unseen.items():
        more = "..." * (len(ids) > 5)
        reasons[b].append(f"units {ids[:5]}{more} were not observed (obs_intervals) in its window")
    return reasons


def _trial_table(nwbfile, extent, series, align_to, trials, dt):
    """(table of kept trials, events (s), event name, data extent, columns left out)."""
    table = nwbfile.trials
    if table is None:
        if align_to is not None:
            raise RecordingError(
                f"the NWB file has no trials table (nwbfile.trials) to align to {align_to!r}; "
                "omit align_to to load the whole recording as one trial"
            )
        select_positions(trials, 1, "trials")
        if series is None:  # whole bins up to and including the last spike
            n_bins = math.floor((extent[1] - extent[0]) * 1000.0 / dt + EDGE_TOL) + 1
            extent = (extent[0], extent[0] + n_bins * dt / 1000.0)
        df = pd.DataFrame({"start_time": [extent[0]], "stop_time": [extent[1]]})
        return df, np.zeros(1), "session start", extent, []
    columns, skipped = _table_columns(table, (), "trials")
    df = pd.DataFrame({"trial_id": np.asarray(table.id[:]), **columns})
    if series is None:  # the recording lasts at least as long as its trials
        extent = (min(extent[0], df["start_time"].min()), max(extent[1], df["stop_time"].max()))
    align_to = "start_time" if align_to is None else align_to
    if align_to not in df.columns:
        raise RecordingError(
            f"align_to={align_to!r} is not a column of the trials table; its columns are "
            f"{list(df.columns)}"
        )
    if df.empty:
        raise RecordingError("the NWB trials table (nwbfile.trials) has no rows")
    df = df.iloc[select_positions(trials, len(df), "trials")]
    events = pd.to_numeric(df[align_to], errors="coerce").to_numpy(np.float64)
    return df, events, align_to, extent, skipped


def nwb_recording(
    nwbfile: Any,
    *,
    dt: float | None = None,
    align_to: str | None = None,
    window: Sequence[float] | None = None,
    kind: str | None = None,
    series: str | None = None,
    trials: Any = None,
    units: Any = None,
    inputs: str | Sequence[str] | None = None,
    behaviour: str | Sequence[str] | None = None,
    on_outside: str = "exclude",
    source: str = "NWBFile",
) -> xr.Dataset:
    """A recording from an open ``pynwb.NWBFile``; see :func:`neurosim.load_recording`."""
    if on_outside not in ("exclude", "raise"):
        raise ValueError(f"on_outside must be 'exclude' or 'raise'; got {on_outside!r}")
    data, unit_cols, skipped, extent, dt, kind, what = _unit_source(nwbfile, series, dt, kind)
    if not (isinstance(dt, numbers.Real) and math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be a positive number of ms; got {dt!r}")
    dt = float(dt)
    keep_units = select_positions(units, len(unit_cols["unit_id"]), "units")
    unit_cols = {k: v[keep_units] for k, v in unit_cols.items()}
    df, ev, align_to, extent, skipped_trials = _trial_table(
        nwbfile, extent, series, align_to, trials, dt
    )
    if window is None:
        start_ms, n_bins = _default_window(df, ev, align_to, dt)
    else:
        start_ms, n_bins = check_window(window, dt)
    bins = dict(start_ms=start_ms, dt=dt, n_bins=n_bins)
    extents, extra = [(what, *extent)], {}
    for name, names in (("input", inputs), ("behaviour", behaviour)):
        for label in [names] if isinstance(names, str) else names or []:
            times, values, (lo, hi) = series_values(find_series(nwbfile, label))
            extra.setdefault(name, []).append((label, times, values))
            extents.append((f"series {label!r}", lo, hi))
    obs = []
    if series is None and "obs_intervals" in nwbfile.units.colnames:
        column = nwbfile.units["obs_intervals"]
        obs = [
            (unit_cols["unit_id"][i].item(), np.asarray(column[row], np.float64).reshape(-1, 2))
            for i, row in enumerate(keep_units)
        ]
    w0, w1 = ev + start_ms / 1000.0, ev + (start_ms + n_bins * dt) / 1000.0
    reasons = _excluded_trials(df, ev, w0, w1, extents, obs, EDGE_TOL * dt / 1000.0, align_to)
    dropped = [
        {"what": f"trial {pos} (id {tid})", "why": "; ".join(why)}
        for pos, tid, why in zip(df.index, df.get("trial_id", df.index), reasons, strict=True)
        if why
    ]
    if dropped and (on_outside == "raise" or len(dropped) == len(df)):
        problems = [f"{d['what']}: {d['why']}" for d in dropped]
        head = "all trials were excluded" if len(dropped) == len(df) else "on_outside='raise'"
        raise RecordingError(f"{head}: " + "; ".join(problems[:5]), problems)
    if dropped:
        warnings.warn(
            f"load_recording: excluded {len(dropped)} of {len(df)} trials ({_first(dropped)}); "
            "attrs['excluded'] lists them",
            RecordingWarning,
            stacklevel=3,
        )
    keep = np.array([not r for r in reasons], dtype=bool)
    ev = ev[keep]
    if series is None:
        activity = bin_spike_times([data[i] for i in keep_units], ev, **bins)
    else:
        activity = bin_series(data[0], data[1][:, keep_units], ev, **bins, name=series)
    binned = {
        name: np.concatenate([bin_series(t, v, ev, **bins, name=n) for n, t, v in items], axis=2)
        for name, items in extra.items()
    }
    attrs = dict(
        source=source,
        nwb_identifier=str(nwbfile.identifier),
        align_to=align_to,
        window_ms=[start_ms, start_ms + n_bins * dt],
        data=series or "units/spike_times",
        input_series=[label for label, _, _ in extra.get("input", [])],
        behaviour_series=[label for label, _, _ in extra.get("behaviour", [])],
    )
    return make_recording(
        activity,
        dt=dt,
        kind=kind,
        trials=df[keep].reset_index(drop=True),
        inputs=binned.get("input"),
        behaviour=binned.get("behaviour"),
        unit_coords=unit_cols,
        time_offset=start_ms,
        attrs=attrs,
        excluded=[*skipped, *skipped_trials, *dropped],
    )


def _first(dropped: list[dict]) -> str:
    first = f"{dropped[0]['what']}: {dropped[0]['why']}"
    return first + " ..." * (len(dropped) > 1)
