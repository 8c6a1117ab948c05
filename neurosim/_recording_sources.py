"""``load_recording``: recorded activity from NWB, xarray (netCDF, zarr) or numpy, as a recording.

Every source ends in :func:`neurosim._recordings.make_recording`, so what comes back always has
``activity (trial, time, unit)``, ``dt`` in ms, the trial table as ``trial`` coordinates and
``attrs['excluded']`` listing whatever was left out and why.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ._binning import EDGE_TOL, check_window, select_positions
from ._nwb import nwb_recording, require_pynwb
from ._recordings import RECORDING_SCHEMA, RecordingError, make_recording, validate_recording
from ._trajectories import SCHEMA as TRAJECTORY_SCHEMA

_AXES = ("trial", "time", "unit")
_CHANNEL = {"input": "input_channel", "behaviour": "behaviour_channel"}
_OWN_ATTRS = ("schema", "schema_version", "kind", "dt", "excluded", "target_kind")
_XARRAY_SUFFIXES = (".nc", ".netcdf", ".h5", ".zarr")


def _is_nwbfile(obj: Any) -> bool:
    return any(cls.__name__ == "NWBFile" for cls in type(obj).__mro__)


def _reject(source: str, **given: Any) -> None:
    """Options that mean nothing for this kind of source are errors, not silently ignored."""
    if bad := [name for name, value in given.items() if value is not None]:
        raise ValueError(f"{', '.join(bad)} does not apply to {source} sources; leave it out")


def _open_xarray(path: Path) -> xr.Dataset:
    opts: dict[str, Any] = {"engine": "h5netcdf"}
    if path.is_dir():
        opts = {"engine": "zarr", "consolidated": False, "chunks": None}
    try:
        with xr.open_dataset(path, decode_times=False, decode_timedelta=False, **opts) as raw:
            ds = raw.load()
    except Exception as err:
        msg = f"{path}: the file is damaged or is not a netCDF/HDF5 file or zarr store"
        raise RecordingError(f"{msg} ({type(err).__name__}: {err})") from err
    for name, var in ds.variables.items():  # zarr gives StringDType, netCDF may give objects
        if var.dtype.kind in "OT" and name not in ds.indexes:
            values = var.values.astype(object)
            if all(isinstance(v, str) for v in values.flat):
                var.values = values.astype(str)
    for obj in [ds, *ds.variables.values()]:  # netCDF attrs come back as numpy scalars
        obj.attrs = {k: v.item() if isinstance(v, np.generic) else v for k, v in obj.attrs.items()}
    return ds


def _activity(obj: xr.Dataset | xr.DataArray, variable: str | None) -> tuple[xr.DataArray, dict]:
    """The activity DataArray and what the source says about it (kind, dt, defaults, attrs)."""
    if isinstance(obj, xr.DataArray):
        _reject("xarray.DataArray", variable=variable)
        return obj, {}
    schema = obj.attrs.get("schema")
    if schema in (RECORDING_SCHEMA, TRAJECTORY_SCHEMA):
        _reject(f"{schema} dataset", variable=variable)
    attrs = {k: v for k, v in obj.attrs.items() if k not in _OWN_ATTRS}
    if schema == RECORDING_SCHEMA:
        validate_recording(obj)
        info = dict(kind=obj.attrs["kind"], dt=obj.attrs["dt"], attrs=attrs)
        info["excluded"] = json.loads(obj.attrs.get("excluded", "[]"))
        return obj["activity"], info | {"defaults": [n for n in _CHANNEL if n in obj]}
    if schema == TRAJECTORY_SCHEMA:
        if "condition" in obj["state"].dims:
            raise ValueError(
                "these trajectories have a perturbation 'condition' dim: pick one first, "
                f"e.g. ds.isel(condition=0) (conditions: {obj['condition'].values.tolist()})"
            )
        info = dict(kind="rates", dt=obj.attrs["dt"], defaults=["input"])
        return obj["state"], info | {"attrs": attrs | {"source_schema": TRAJECTORY_SCHEMA}}
    names = [str(n) for n in obj.data_vars]
    name = variable or (
        "activity" if "activity" in names else names[0] if len(names) == 1 else None
    )
    if name not in names:
        raise ValueError(
            f"name the activity with variable=; the dataset holds {names}"
            + (f" (no {variable!r})" if variable else "")
        )
    return obj[name], {"attrs": attrs}


def _renamed(da: xr.DataArray, dims: Any, extra: str | None = None) -> xr.DataArray:
    """``da`` with dims renamed by ``dims`` and (for inputs) its one other dim named ``extra``."""
    if dims is not None:
        mapping = (
            dict(dims) if isinstance(dims, Mapping) else dict(zip(da.dims, dims, strict=False))
        )
        if not isinstance(dims, Mapping) and len(dims) != da.ndim:
            raise ValueError(
                f"dims={tuple(dims)} names {len(dims)} axes but the data has dims {da.dims}"
            )
        da = da.rename({k: v for k, v in mapping.items() if k in da.dims and k != v})
    other = [d for d in da.dims if d not in _AXES]
    if extra is not None and len(other) <= 1:
        return da.rename({other[0]: extra}) if other else da.expand_dims(extra, axis=-1)
    if other or "time" not in da.dims or (extra is None and "unit" not in da.dims):
        want = (
            "trial (optional), time and unit"
            if extra is None
            else "trial, time and at most one channel dim"
        )
        raise ValueError(
            f"the data has dims {da.dims}; it needs {want}: map the names with "
            "dims={'your_dim': 'trial' | 'time' | 'unit'} (or a sequence, for arrays)"
        )
    return da


def _time_axis(
    da: xr.DataArray, dt: float | None, time_offset: float | None
) -> tuple[float, float]:
    if "time" not in da.coords:
        if dt is None:
            raise ValueError(
                "dt (ms) is required: the data has no 'time' coordinate to read it from"
            )
        return float(dt), float(time_offset or 0.0)
    time = np.asarray(da["time"].values, dtype=np.float64)
    step = float(np.median(np.diff(time))) if time.size > 1 else float(dt or math.nan)
    if time.size > 1 and not np.allclose(np.diff(time), step, rtol=1e-6, atol=0):
        steps = np.unique(np.diff(time))[:5]
        raise ValueError(f"the 'time' coordinate must step evenly (ms); it steps by {steps}")
    if dt is not None and not math.isclose(step, dt, rel_tol=1e-6):
        raise ValueError(
            f"dt={dt} ms but the 'time' coordinate steps by {step:g} ms; leave dt out or "
            "resample the data first"
        )
    if time_offset is not None:
        raise ValueError(
            "time_offset applies to data without a 'time' coordinate; this data has one"
        )
    return (step if dt is None else float(dt)), float(time[0])


def _crop(work: xr.Dataset, window: Any, dt: float, offset: float) -> tuple[xr.Dataset, float]:
    start_ms, n_bins = check_window(window, dt)
    first = (start_ms - offset) / dt
    n_time = work.sizes["time"]
    if abs(first - round(first)) > EDGE_TOL or round(first) < 0 or round(first) + n_bins > n_time:
        raise RecordingError(
            f"window={tuple(window)} ms must start on a bin edge and lie within the data's time "
            f"axis [{offset:g}, {offset + n_time * dt:g}) ms in steps of dt={dt:g} ms"
        )
    first = round(first)
    return work.isel(time=slice(first, first + n_bins)), offset + first * dt


def _channels(name: str, value: Any, ds: xr.Dataset | None, dims: Any, activity: xr.DataArray):
    """An ``input`` or ``behaviour`` DataArray: an array, or the name(s) of variables in ``ds``."""
    is_names = isinstance(value, list | tuple) and value and all(isinstance(v, str) for v in value)
    if isinstance(value, str) or is_names:
        names = [value] if isinstance(value, str) else list(value)
        have = sorted(map(str, ds.data_vars)) if ds is not None else []
        if missing := [n for n in names if n not in have]:
            raise ValueError(f"{name}: no variable {missing} in the source; it has {have}")
        parts = [_renamed(ds[n], dims, _CHANNEL[name]) for n in names]
        parts = [p.drop_vars([c for c in p.coords if _CHANNEL[name] in p[c].dims]) for p in parts]
        return xr.concat(parts, _CHANNEL[name]) if len(parts) > 1 else parts[0]
    arr = np.asarray(value)
    arr = arr[:, :, None] if arr.ndim == 2 else arr
    if arr.ndim != 3 or arr.shape[:2] != (activity.sizes["trial"], activity.sizes["time"]):
        want = f"[trial, time(, channel)] = {activity.shape[:2]}"
        raise ValueError(f"{name} must be {want}; got {np.shape(value)}")
    return xr.DataArray(arr, dims=("trial", "time", _CHANNEL[name]))


def _table(values: Any, n: int, what: str, dim: str) -> pd.DataFrame | None:
    """A metadata table (DataFrame or mapping of columns), checked against the data's size."""
    if not isinstance(values, pd.DataFrame | Mapping):
        return None
    table = pd.DataFrame(dict(values)) if isinstance(values, Mapping) else values
    if len(table) != n:
        raise RecordingError(
            f"{what} has {len(table)} rows but the data has {n} {dim}s (one row each)"
        )
    return table.reset_index(drop=True)


def _split_coords(work: xr.Dataset, excluded: list[dict]) -> tuple[pd.DataFrame, dict]:
    """1-D trial and unit coordinates; other non-index coordinates are reported as left out."""
    tables: dict[str, dict] = {"trial": {}, "unit": {}}
    for name, coord in work.coords.items():
        if name in work.dims:
            continue
        if coord.ndim == 1 and coord.dims[0] in tables:
            tables[coord.dims[0]][str(name)] = coord.values
        else:
            why = "only 1-D trial and unit coordinates are kept"
            excluded.append({"what": f"coordinate {name!r} over {coord.dims}", "why": why})
    for dim, table in tables.items():
        index = work[dim].values
        if not np.array_equal(index, np.arange(index.size)):
            table[f"{dim}_label"] = index
    return pd.DataFrame(tables["trial"], index=range(work.sizes["trial"])), tables["unit"]


def _from_xarray(
    obj, *, dt, window, kind, dims, trials, units, inputs, behaviour, variable, time_offset
):
    activity, info = _activity(obj, variable)
    activity = _renamed(activity, dims)
    if "trial" not in activity.dims:
        activity = activity.expand_dims("trial")
    activity = activity.transpose(*_AXES)
    for dim in ("trial", "unit"):  # index coordinates, so that selections are remembered
        if dim not in activity.coords:
            activity = activity.assign_coords({dim: np.arange(activity.sizes[dim])})
    dt, offset = _time_axis(
        activity, dt if "dt" not in info else _same_dt(dt, info["dt"]), time_offset
    )
    ds = obj if isinstance(obj, xr.Dataset) else None
    work = xr.Dataset({"activity": activity})
    for name, value in (("input", inputs), ("behaviour", behaviour)):
        if value is None and name in info.get("defaults", ()):
            value = name
        if value is not None:
            part = _channels(name, value, ds, dims, activity)
            part = part.expand_dims("trial") if "trial" not in part.dims else part
            work[name] = part.transpose("trial", "time", _CHANNEL[name])
    excluded = list(info.get("excluded", []))
    trial_table = _table(trials, work.sizes["trial"], "trials", "trial")
    unit_table = _table(units, work.sizes["unit"], "units", "unit")
    if trial_table is None:
        work = work.isel(trial=select_positions(trials, work.sizes["trial"], "trials"))
    if unit_table is None:
        work = work.isel(unit=select_positions(units, work.sizes["unit"], "units"))
    if window is not None:
        work, offset = _crop(work, window, dt, offset)
    table, unit_coords = _split_coords(work, excluded)
    if trial_table is not None:
        table = pd.concat([table, trial_table], axis=1)
    unit_coords |= (
        {} if unit_table is None else {str(k): v.to_numpy() for k, v in unit_table.items()}
    )
    return make_recording(
        work["activity"].values,
        dt=dt,
        kind=kind or info.get("kind"),
        trials=table,
        inputs=work["input"].values if "input" in work else None,
        behaviour=work["behaviour"].values if "behaviour" in work else None,
        unit_coords=unit_coords,
        time_offset=offset,
        attrs=info.get("attrs"),
        excluded=excluded,
    )


def _same_dt(dt: float | None, source_dt: float) -> float:
    if dt is not None and not math.isclose(dt, source_dt, rel_tol=1e-9):
        raise ValueError(
            f"dt={dt} ms but the source was recorded at dt={source_dt} ms; leave dt out"
        )
    return float(source_dt)


def _from_array(arr: Any, *, dims: Any, **options: Any) -> xr.Dataset:
    arr = np.asarray(arr)
    if dims is None or isinstance(dims, str | Mapping):
        raise ValueError(
            f"dims is required for arrays: name each of the {arr.ndim} axes of the "
            f"{arr.shape} array, e.g. dims=('trial', 'time', 'unit')"
        )
    dims = tuple(dims)
    if len(dims) != arr.ndim:
        raise ValueError(
            f"dims={dims} names {len(dims)} axes but the array has {arr.ndim} (shape {arr.shape})"
        )
    if len(set(dims)) != len(dims) or not set(dims) <= set(_AXES) or "time" not in dims:
        raise ValueError(f"dims={dims}: name each axis once, from {_AXES} ('time' is required)")
    da = xr.DataArray(arr, dims=dims)
    return _from_xarray(
        da if "unit" in dims else da.expand_dims("unit", axis=-1), dims=None, **options
    )


def load_recording(
    source: Any,
    *,
    dt: float | None = None,
    align_to: str | None = None,
    window: Sequence[float] | None = None,
    kind: str | None = None,
    dims: Sequence[str] | Mapping[str, str] | None = None,
    trials: Any = None,
    units: Any = None,
    inputs: Any = None,
    behaviour: Any = None,
    series: str | None = None,
    variable: str | None = None,
    time_offset: float | None = None,
    on_outside: str = "exclude",
) -> xr.Dataset:
    """Load recorded neural activity as a recording dataset ``activity (trial, time, unit)``.

    Parameters
    ----------
    source : path, pynwb.NWBFile, xarray.Dataset or DataArray, or array
        ``.nwb`` file or an open ``NWBFile``; a recording or trajectory dataset, any
        DataArray/Dataset (``dims=`` maps its dims), a ``.nc``/``.h5`` netCDF file or
        ``.zarr`` store holding one; a numpy array with ``dims=``.
    dt : float, optional
        Bin width in ms. Required for spike times and for arrays; read from the ``time``
        coordinate (or ``attrs['dt']``) of xarray data; a TimeSeries' sampling interval by
        default.
    align_to : str, optional
        NWB: the trials-table column (s) that is time 0 of each trial, e.g. ``"stim_on_time"``
        (default ``"start_time"``). Without a trials table the whole file is one trial.
    window : (start_ms, stop_ms), optional
        NWB: the span around the event to bin, a whole number of ``dt`` bins (default: the
        trials' own start and stop, when all trials agree). Arrays and xarray: crop ``time``.
    kind : {"counts", "rates"}, optional
        Spike times give counts; continuous data gives rates; integer arrays give counts.
    dims : sequence or mapping, optional
        Arrays: the name of each axis, from ``trial``, ``time``, ``unit`` in any order
        (``trial`` may be left out: one trial). xarray: ``{"your_dim": "unit", ...}``.
    trials : DataFrame, mapping, sequence of int or bool mask, optional
        A table (one row per trial) adds trial coordinates; positions or a mask keep only
        those trials (NWB: rows of the trials table).
    units : DataFrame, mapping, sequence of int or bool mask, optional
        A table adds unit coordinates; positions or a mask keep only those units.
    inputs, behaviour : array, str or list of str, optional
        ``[trial, time(, channel)]`` arrays, or names of variables (xarray) or TimeSeries
        (NWB; averaged within each bin) to keep as ``input`` / ``behaviour``.
    series : str, optional
        NWB: a TimeSeries or RoiResponseSeries (calcium, rates) to load instead of spikes,
        averaged within each bin (kind "rates").
    variable : str, optional
        xarray Dataset: which variable holds the activity (default ``activity`` or the only one).
    time_offset : float, optional
        Arrays: the time (ms) of the first bin relative to the alignment event (default 0).
    on_outside : {"exclude", "raise"}, default "exclude"
        NWB trials whose window reaches outside the recording (or that lack the event) are
        left out, listed in ``attrs['excluded']`` and warned about; or raise.

    Returns
    -------
    xarray.Dataset
        The recording schema (``neurosim._recordings.make_recording``).

    Raises
    ------
    RecordingError
        Bad data: NaN/inf, negative counts, unsorted or ragged spike times, no Units table,
        a missing event column, tables whose rows do not match the data.
    ValueError
        Options that do not fit the source. ImportError (with the install hint) when an NWB
        source needs pynwb and it is missing.

    Examples
    --------
    >>> counts = np.random.default_rng(0).poisson(2.0, size=(30, 5, 4))  # time, unit, trial
    >>> rec = load_recording(counts, dims=("time", "unit", "trial"), dt=10.0)
    >>> rec.activity.dims, rec.activity.shape, rec.attrs["kind"]
    (('trial', 'time', 'unit'), (4, 30, 5), 'counts')
    """
    flat = dict(dt=dt, window=window, kind=kind, trials=trials, units=units)
    flat |= dict(inputs=inputs, behaviour=behaviour)
    nwb = dict(align_to=align_to, series=series, on_outside=on_outside)
    others = dict(dims=dims, variable=variable, time_offset=time_offset)
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"no recording at {path}")
        suffix = path.suffix.lower()
        if suffix == ".nwb":
            _reject("NWB", **others)
            with require_pynwb().NWBHDF5IO(str(path), "r") as io:
                return nwb_recording(io.read(), **flat, **nwb, source=str(path))
        if suffix not in _XARRAY_SUFFIXES and not path.is_dir():
            raise ValueError(
                f"cannot read {path}: use .nwb (NWB), .nc/.netcdf/.h5 (netCDF) or .zarr"
            )
        source = _open_xarray(path)
    if _is_nwbfile(source):
        _reject("NWB", **others)
        return nwb_recording(source, **flat, **nwb)
    _reject("array and xarray", align_to=align_to, series=series)
    if on_outside not in ("exclude", "raise"):
        raise ValueError(f"on_outside must be 'exclude' or 'raise'; got {on_outside!r}")
    if isinstance(source, xr.Dataset | xr.DataArray):
        return _from_xarray(source, **flat, **others)
    if isinstance(source, np.ndarray | list | tuple) or hasattr(source, "__array__"):
        return _from_array(source, dims=dims, variable=variable, time_offset=time_offset, **flat)
    raise TypeError(
        "load_recording reads an .nwb/.nc/.zarr path, a pynwb.NWBFile, an xarray Dataset or "
        f"DataArray, or an array with dims=; got {type(source).__name__}"
    )
