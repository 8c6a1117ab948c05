"""Recordings (or trajectories) written as NWB files: spike times that bin back to the same counts.

pynwb is the optional ``nwb`` extra, imported inside :func:`export_nwb`; ``neurosim._nwb``
re-exports it (this module imports nothing from there at import time, so there is no cycle).
"""

from __future__ import annotations

import hashlib
import math
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import xarray as xr

from ._trajectories import _commit, _remove

_RESERVED_TRIAL = ("start_time", "stop_time", "trial_id")


def _counts_to_export(rec: xr.Dataset, rate_scale: float | None, seed: int) -> np.ndarray:
    activity = rec["activity"].values
    if rec.attrs["kind"] == "counts":
        if rate_scale is not None:
            raise ValueError(
                "rate_scale applies to recordings of kind 'rates'; this one holds counts"
            )
        return activity.astype(np.int64)
    if rate_scale is None or not (math.isfinite(rate_scale) and rate_scale > 0):
        raise ValueError(
            "this recording holds rates: pass rate_scale (Hz per unit of activity, > 0) to draw "
            f"Poisson spike counts from them; got rate_scale={rate_scale!r}"
        )
    if (low := float(activity.min(initial=0.0))) < 0:
        raise ValueError(
            f"rates must be >= 0 to draw spikes; the minimum is {low:.4g} (rectify or shift "
            "them first, e.g. rec['activity'] = rec.activity.clip(min=0))"
        )
    lam = activity.astype(np.float64) * (rate_scale * float(rec.attrs["dt"]) / 1000.0)
    return np.random.default_rng(seed).poisson(lam)


def _ids(rec: xr.Dataset, name: str, n: int) -> np.ndarray:
    ids = np.asarray(rec[name].values) if name in rec.coords else np.arange(n)
    unique = ids.dtype.kind in "iu" and np.unique(ids).size == n
    return ids.astype(np.int64) if unique else np.arange(n)


def export_nwb(
    recording_or_trajectories: xr.Dataset,
    path: str | os.PathLike[str],
    *,
    rate_scale: float | None = None,
    seed: int = 0,
    session_description: str = "neurosim recording",
    gap_ms: float = 100.0,
    event_column: str = "event_time",
    overwrite: bool = True,
) -> Path:
    """Write a recording (or trajectories) as an NWB file: spike times, trials, units.

    Each count ``k`` in the bin ``[e, e + dt)`` becomes ``k`` spikes at
    ``e + (j + 0.5) / k * dt`` (``j = 0..k-1``), strictly inside the bin, so loading the file
    with the same ``dt``, ``align_to=event_column`` and window gives back the same counts.
    Trials are laid end to end with ``gap_ms`` between them; each gets ``start_time`` and
    ``stop_time`` (its window) and ``event_column`` (time 0 of ``time``), plus every trial
    coordinate (numbers, bools, strings) as a column (``trial_id`` becomes the row id;
    ``start_time``, ``stop_time`` and ``event_column`` coordinates are re-derived). Unit
    coordinates become Units columns (``unit_id`` the row id). ``input`` and ``behaviour``
    become TimeSeries of those names in acquisition, one sample per bin centre.

    Parameters
    ----------
    recording_or_trajectories : xarray.Dataset
        A recording (see :func:`neurosim.load_recording`) or trajectories (their ``state``).
    path : str or path-like
        Where to write; written atomically (a failure leaves an existing file untouched).
    rate_scale : float, optional
        For continuous activity only: Hz per unit of activity; spike counts are then drawn
        as Poisson(activity · rate_scale · dt / 1000) with ``seed``.
    seed : int, default 0
    session_description : str
    gap_ms : float, default 100
        Time between one trial's window and the next.
    event_column : str, default "event_time"
    overwrite : bool, default True

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> from neurosim._recordings import make_recording
    >>> rec = make_recording(np.array([[[0, 3], [1, 0]]]), dt=5.0)
    >>> path = export_nwb(rec, "session.nwb")  # doctest: +SKIP
    >>> load_recording(path, dt=5.0, align_to="event_time").activity  # doctest: +SKIP
    """
    from ._nwb import require_pynwb
    from ._recording_sources import load_recording

    pynwb = require_pynwb()

    rec = recording_or_trajectories
    if not (isinstance(rec, xr.Dataset) and rec.attrs.get("schema") == "neurosim.recording"):
        rec = load_recording(rec)
    path = Path(path)
    if not overwrite and os.path.lexists(path):
        raise FileExistsError(f"{path} exists (pass overwrite=True to replace it)")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"directory {path.parent} does not exist")
    if not (math.isfinite(gap_ms) and gap_ms >= 0):
        raise ValueError(f"gap_ms must be a finite number of ms >= 0; got {gap_ms!r}")
    counts = _counts_to_export(rec, rate_scale, seed)
    (b, t, n), dt, offset = counts.shape, float(rec.attrs["dt"]), float(rec["time"].values[0])
    start = (gap_ms + np.arange(b) * (t * dt + gap_ms)) / 1000.0
    event, stop = start - offset / 1000.0, start + t * dt / 1000.0
    digest = hashlib.sha256(counts.tobytes() + repr((dt, offset, gap_ms, seed)).encode())
    nwb = pynwb.NWBFile(
        session_description=session_description,
        identifier=f"neurosim-{digest.hexdigest()[:32]}",
        session_start_time=datetime(1970, 1, 1, tzinfo=UTC),
    )
    skip = {"trial", event_column, *_RESERVED_TRIAL}
    trial_cols = {
        k: c.values for k, c in rec.coords.items() if c.dims == ("trial",) and k not in skip
    }
    nwb.add_trial_column(event_column, "alignment event (s): time 0 of the recording's time axis")
    for name in trial_cols:
        nwb.add_trial_column(name, f"trial coordinate {name!r} of the neurosim recording")
    for i, trial_id in enumerate(_ids(rec, "trial_id", b)):
        row = {name: values[i] for name, values in trial_cols.items()}
        nwb.add_trial(
            start_time=start[i],
            stop_time=stop[i],
            id=int(trial_id),
            **{event_column: event[i]},
            **row,
        )
    bi, ti, ni = np.nonzero(counts)
    k = counts[bi, ti, ni]
    rep = np.repeat(np.arange(k.size), k)
    j = np.arange(rep.size) - np.repeat(np.cumsum(k) - k, k)
    times = event[bi[rep]] + (offset + (ti[rep] + (j + 0.5) / k[rep]) * dt) / 1000.0
    order = np.lexsort((times, ni[rep]))
    times, bounds = times[order], np.searchsorted(ni[rep][order], np.arange(n + 1))
    unit_cols = {
        k: c.values
        for k, c in rec.coords.items()
        if c.dims == ("unit",) and k not in ("unit", "unit_id")
    }
    for name in unit_cols:
        nwb.add_unit_column(name, f"unit coordinate {name!r} of the neurosim recording")
    for u, unit_id in enumerate(_ids(rec, "unit_id", n)):
        row = {name: values[u] for name, values in unit_cols.items()}
        nwb.add_unit(spike_times=times[bounds[u] : bounds[u + 1]], id=int(unit_id), **row)
    centres = (start[:, None] + (np.arange(t) + 0.5) * dt / 1000.0).ravel()
    for name in ("input", "behaviour"):
        if name in rec:
            data = rec[name].values.reshape(b * t, -1)
            nwb.add_acquisition(
                pynwb.TimeSeries(name=name, data=data, unit="a.u.", timestamps=centres)
            )

    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}-{secrets.token_hex(4)}{path.suffix}")
    try:  # a temporary sibling (keeping the suffix pynwb expects), then a rename
        with pynwb.NWBHDF5IO(str(tmp), "w") as io:
            io.write(nwb)
        if not overwrite and os.path.lexists(path):
            raise FileExistsError(f"{path} appeared during the write")
        _commit(tmp, path)
    except BaseException:
        _remove(tmp)
        raise
    return path
