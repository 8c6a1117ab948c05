"""The recording dataset: recorded neural activity in the trajectory layout (``trial, time, unit``).

A recording is what :func:`neurosim.load_recording` returns and what the fitting functions of
:mod:`neurosim.fit` take: spike counts (integers) or continuous activity (rates, calcium) of
``N`` units over ``B`` trials of ``T`` bins, the trial table as ``trial`` coordinates, the
unit table as ``unit`` coordinates, optional task inputs and behaviour, and ``dt`` in ms.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr

from ._trajectories import _encode_attr, _sanitise_column

RECORDING_SCHEMA = "neurosim.recording"
RECORDING_SCHEMA_VERSION = 1
KINDS = ("counts", "rates")
_OPTIONAL = {"input": "input_channel", "behaviour": "behaviour_channel"}

Kind = Literal["counts", "rates"]


class RecordingError(ValueError):
    """Recorded data that cannot be used as it is; ``problems`` lists every reason."""

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems)


def _where(bad: np.ndarray, limit: int = 5) -> str:
    """``trial i, unit j`` for the first few offending entries of a ``[B, T, N]`` mask."""
    idx = np.argwhere(bad)
    shown = ", ".join(f"(trial {i}, time bin {t}, unit {n})" for i, t, n in idx[:limit])
    more = f" and {len(idx) - limit} more" if len(idx) > limit else ""
    return f"{len(idx)} entries: {shown}{more}"


def _check_activity(activity: np.ndarray, kind: str | None) -> tuple[np.ndarray, str]:
    if activity.ndim != 3:
        raise RecordingError(
            f"activity must be [trial, time, unit] (3-D); got shape {activity.shape}"
        )
    if activity.dtype.kind not in "biuf":
        raise RecordingError(f"activity must be numeric; got dtype {activity.dtype}")
    if kind is None:
        kind = "counts" if activity.dtype.kind in "biu" else "rates"
    if kind not in KINDS:
        raise RecordingError(f"kind must be one of {KINDS}; got {kind!r}")
    if activity.dtype.kind == "f" and not np.isfinite(activity).all():
        bad = ~np.isfinite(activity)
        raise RecordingError(f"activity holds NaN or inf at {_where(bad)}")
    if kind == "counts":
        if (activity < 0).any():
            raise RecordingError(f"counts must be >= 0; negative at {_where(activity < 0)}")
        if activity.dtype.kind == "f" and (activity != np.round(activity)).any():
            frac = activity != np.round(activity)
            raise RecordingError(
                f"kind='counts' needs whole numbers; fractional at {_where(frac)} "
                "(use kind='rates' for continuous data)"
            )
        return activity.astype(np.int64, copy=False), kind
    return activity.astype(np.float32, copy=False), kind


def _channels(name: str, arr: Any, b: int, t: int) -> np.ndarray:
    arr = np.asarray(arr, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[:2] != (b, t):
        raise RecordingError(
            f"{name} must be [trial, time, channel] = [{b}, {t}, C] like activity; got {arr.shape}"
        )
    if not np.isfinite(arr).all():
        raise RecordingError(f"{name} holds NaN or inf at {_where(~np.isfinite(arr))}")
    return arr


def make_recording(
    activity: np.ndarray,
    *,
    dt: float,
    kind: Kind | None = None,
    trials: pd.DataFrame | None = None,
    inputs: np.ndarray | None = None,
    behaviour: np.ndarray | None = None,
    unit_coords: Mapping[str, Sequence[Any]] | None = None,
    time_offset: float = 0.0,
    attrs: Mapping[str, Any] | None = None,
    excluded: Sequence[Mapping[str, Any]] = (),
) -> xr.Dataset:
    """Wrap ``[trial, time, unit]`` activity in a validated recording dataset.

    Parameters
    ----------
    activity : numpy.ndarray
        ``[B, T, N]`` spike counts (non-negative whole numbers) or continuous activity.
    dt : float
        Bin width in ms.
    kind : {"counts", "rates"}, optional
        Inferred from the dtype when omitted (integers → counts).
    trials : pandas.DataFrame, optional
        ``B`` rows; each column becomes a ``trial`` coordinate.
    inputs, behaviour : numpy.ndarray, optional
        ``[B, T, C]`` (or ``[B, T]``) task inputs a model may be driven by, and behavioural
        variables (``input`` over ``input_channel``, ``behaviour`` over ``behaviour_channel``).
    unit_coords : mapping, optional
        Per-unit labels (``unit_id``, ``location``...), each a coordinate on ``unit``.
    time_offset : float, default 0
        Time of the first bin's left edge relative to the alignment event, in ms.
    attrs : mapping, optional
        Provenance; values that netCDF cannot hold are stored as JSON strings.
    excluded : sequence of dict, optional
        What the loader left out and why (``{"what": ..., "why": ...}``), kept in ``attrs``.

    Returns
    -------
    xarray.Dataset
        ``activity (trial, time, unit)`` plus optional ``input`` and ``behaviour``; attrs
        ``schema="neurosim.recording"``, ``kind``, ``dt``, ``excluded`` (JSON).

    Raises
    ------
    RecordingError
        NaN or inf, negative or fractional counts, or shapes that do not match.

    Examples
    --------
    >>> counts = np.zeros((2, 5, 3), dtype=int)
    >>> rec = make_recording(counts, dt=10.0, trials=pd.DataFrame({"coh": [0.1, 0.5]}))
    >>> rec.activity.dims, rec.attrs["kind"], rec.time.values.tolist()
    (('trial', 'time', 'unit'), 'counts', [0.0, 10.0, 20.0, 30.0, 40.0])
    """
    data, kind = _check_activity(np.asarray(activity), kind)
    b, t, n = data.shape
    dt = float(dt)
    if not (np.isfinite(dt) and dt > 0):
        raise RecordingError(f"dt must be a positive number of ms; got {dt!r}")
    coords: dict[str, Any] = {
        "trial": np.arange(b, dtype=np.int64),
        "time": ("time", float(time_offset) + np.arange(t) * dt, {"units": "ms"}),
        "unit": np.arange(n, dtype=np.int64),
    }
    data_vars: dict[str, Any] = {"activity": (("trial", "time", "unit"), data)}
    for name, arr in (("input", inputs), ("behaviour", behaviour)):
        if arr is not None:
            arr = _channels(name, arr, b, t)
            dim = _OPTIONAL[name]
            data_vars[name] = (("trial", "time", dim), arr)
            coords[dim] = np.arange(arr.shape[2], dtype=np.int64)
    for key, values in (unit_coords or {}).items():
        column = _sanitise_column(pd.Series(list(values), dtype=object).infer_objects())
        if column.shape != (n,) or str(key) in coords or str(key) in data_vars:
            raise RecordingError(
                f"unit_coords[{key!r}] needs {n} entries (one per unit) and a free name; "
                f"got {len(column)}"
            )
        coords[str(key)] = ("unit", column)
    if trials is not None:
        if not isinstance(trials, pd.DataFrame) or len(trials) != b:
            got = len(trials) if isinstance(trials, pd.DataFrame) else type(trials).__name__
            raise RecordingError(
                f"trials must be a DataFrame with {b} rows (one per trial); got {got}"
            )
        for column in trials.columns:
            name = str(column)
            while name in coords or name in data_vars:
                name = f"trial_{name}"
            coords[name] = ("trial", _sanitise_column(trials[column].reset_index(drop=True)))
    meta: dict[str, Any] = {str(k): _encode_attr(v) for k, v in (attrs or {}).items()}
    meta.update(
        schema=RECORDING_SCHEMA,
        schema_version=RECORDING_SCHEMA_VERSION,
        kind=kind,
        dt=dt,
        excluded=json.dumps([dict(e) for e in excluded], default=str),
    )
    return xr.Dataset(data_vars, coords=coords, attrs=meta)


def validate_recording(ds: Any) -> xr.Dataset:
    """Check that ``ds`` follows the recording schema; return it unchanged.

    Raises
    ------
    RecordingError
        Listing every problem found (``err.problems``).

    Examples
    --------
    >>> rec = make_recording(np.ones((1, 4, 2)), dt=5.0)
    >>> validate_recording(rec) is rec
    True
    """
    if not isinstance(ds, xr.Dataset):
        raise RecordingError(f"a recording must be an xarray.Dataset; got {type(ds).__name__}")
    problems: list[str] = []
    if ds.attrs.get("schema") != RECORDING_SCHEMA:
        problems.append(f"attrs['schema'] is {ds.attrs.get('schema')!r}, not {RECORDING_SCHEMA!r}")
    if ds.attrs.get("kind") not in KINDS:
        problems.append(f"attrs['kind'] is {ds.attrs.get('kind')!r}; expected one of {KINDS}")
    dt = ds.attrs.get("dt")
    if not (isinstance(dt, int | float | np.number) and np.isfinite(dt) and dt > 0):
        problems.append(f"attrs['dt'] must be a positive number of ms; got {dt!r}")
    if "activity" not in ds:
        problems.append("variable 'activity' (trial, time, unit) is missing")
    elif ds["activity"].dims != ("trial", "time", "unit"):
        problems.append(f"activity has dims {ds['activity'].dims}; expected (trial, time, unit)")
    else:
        try:
            _check_activity(ds["activity"].values, ds.attrs.get("kind"))
        except RecordingError as err:
            problems.append(str(err))
    for name, dim in _OPTIONAL.items():
        if name in ds and ds[name].dims != ("trial", "time", dim):
            problems.append(f"{name} has dims {ds[name].dims}; expected (trial, time, {dim})")
    if problems:
        raise RecordingError("not a valid recording: " + "; ".join(problems), problems)
    return ds


def recording_array(ds: xr.Dataset, name: str = "activity") -> np.ndarray:
    """``ds[name]`` as a numpy array ``[B, T, ·]`` (float64 for continuous data).

    Examples
    --------
    >>> rec = make_recording(np.arange(6).reshape(1, 3, 2), dt=1.0)
    >>> recording_array(rec).dtype
    dtype('int64')
    """
    if name not in ds:
        raise RecordingError(
            f"the recording has no variable {name!r}; it has {sorted(ds.data_vars)}"
        )
    arr = ds[name].values
    return arr.astype(np.float64) if arr.dtype.kind == "f" else arr
