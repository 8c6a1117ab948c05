"""Trajectory datasets: the schema, building, validation, atomic save and load.

xarray forbids a variable named like its dim: ``input``, ``output`` vary over ``*_channel``."""

from __future__ import annotations

import errno
import functools
import importlib.util
import json
import math
import numbers
import os
import secrets
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr

SCHEMA = "neurosim.trajectories"
SCHEMA_VERSION = 1
_DIMS = ("trial", "time", "unit", "input_channel", "output_channel")
_BT = ("trial", "time")  # class targets; continuous targets add "output_channel"
_VAR_DIMS = dict(state=(*_BT, "unit"), input=(*_BT, "input_channel"))
_VAR_DIMS.update(output=(*_BT, "output_channel"), target=_BT, mask=_BT, valid=_BT)
_CONDITIONED = ("state", "input", "output")  # may lead with a perturbation "condition" dim
_PLAIN_ATTRS = (str, int, float, np.integer, np.floating)
_SUFFIXES = {".nc": "netcdf", ".netcdf": "netcdf", ".h5": "netcdf", ".zarr": "zarr"}


class TrajectoryFormatError(ValueError):
    """A dataset or file does not follow the trajectory schema; ``problems`` lists each."""

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems)


def _json_default(obj: Any) -> Any:  # numpy (and torch) via tolist, dates via isoformat
    if isinstance(obj, set | frozenset):
        return sorted(obj, key=repr)
    return getattr(obj, "tolist", getattr(obj, "isoformat", obj.__str__))()


_to_json = functools.partial(json.dumps, sort_keys=True, default=_json_default)


def _encode_attr(value: Any) -> Any:
    """Keep strings and real numbers; JSON-encode everything else (bool and None included)."""
    if isinstance(value, bool) or not isinstance(value, _PLAIN_ATTRS):
        return _to_json(value)
    return value.item() if isinstance(value, np.generic) else value


def _sanitise_column(series: pd.Series) -> np.ndarray:
    """An array that netCDF and zarr store and give back unchanged: numbers, bool or str."""
    dtype, has_na = series.dtype, bool(series.isna().any())
    if pd.api.types.is_bool_dtype(dtype) and not has_na:
        return series.to_numpy(dtype=bool)
    if isinstance(dtype, np.dtype) and dtype.kind in "iuf":
        return series.to_numpy(dtype=np.float32 if dtype == np.float16 else dtype)
    numpy_dtype = getattr(dtype, "numpy_dtype", None)  # pandas nullable Int64, Float64, boolean
    if numpy_dtype is not None and numpy_dtype.kind in "iufb":
        if has_na or numpy_dtype.kind == "b":
            return series.to_numpy(dtype=np.float64, na_value=np.nan)
        return series.to_numpy(dtype=numpy_dtype)
    values = series.to_numpy(dtype=object, na_value=None)
    if all(isinstance(v, str) for v in values):
        return np.array([str(v) for v in values], dtype=str)
    return np.array([_to_json(v) for v in values], dtype=str)


def build_trajectories(
    *,
    state: np.ndarray,
    inputs: np.ndarray,
    outputs: np.ndarray,
    targets: np.ndarray,
    mask: np.ndarray,
    valid: np.ndarray,
    dt: float,
    trials: pd.DataFrame,
    unit_coords: Mapping[str, Sequence[Any]],
    attrs: Mapping[str, Any] | None = None,
    covariates: Mapping[str, np.ndarray] | None = None,
) -> xr.Dataset:
    """Wrap simulated arrays in a labelled trajectory dataset, without copying them.

    Parameters
    ----------
    state, inputs, outputs, targets, mask, valid : numpy.ndarray
        Float ``[B, T, N]``, ``[B, T, I]``, ``[B, T, O]``; class ids (int ``[B, T]``) or
        float ``[B, T, O]``; float ``[B, T]`` loss weights; bool ``[B, T]`` in-trial flags.
    dt : float
        Time step in ms.
    trials : pandas.DataFrame
        ``B`` rows; each column becomes a ``trial`` coordinate: numbers and bools kept,
        all-string columns as ``str``, others as JSON text; a clashing name gets ``trial_``.
    unit_coords : mapping of str to sequence
        Per-unit labels (at least ``"module"``), each a coordinate on ``unit``.
    attrs : mapping, optional
        Provenance: strings and numbers kept, anything else stored as a JSON string.
    covariates : mapping of str to numpy.ndarray, optional
        The paradigm's per-trial or per-step variables (``TrialBatch.covariates``), each
        ``[B, T, ...]`` or ``[B, ...]``: variables over ``trial, time`` (or ``trial``) with
        attr ``covariate = 1``; a trailing axis of 2 named ``position`` gets the dim
        ``space`` (``x``, ``y``), other trailing axes ``<name>_dim<i>``.

    Returns
    -------
    xarray.Dataset
        Variables ``state, input, output, target, mask, valid``; ``time`` in ms.

    Examples
    --------
    >>> z = np.zeros((2, 3, 4), np.float32)
    >>> ds = build_trajectories(state=z, inputs=z, outputs=z, targets=np.zeros((2, 3), int),
    ...     mask=np.ones((2, 3), np.float32), valid=np.ones((2, 3), bool), dt=10.0,
    ...     trials=pd.DataFrame({"coherence": [0.1, 0.5]}), unit_coords={"module": list("aabb")})
    >>> ds.state.dims, ds.time.values.tolist(), ds.attrs["target_kind"]
    (('trial', 'time', 'unit'), [0.0, 10.0, 20.0], 'class')
    """
    arrays = dict(state=state, input=inputs, output=outputs, target=targets, mask=mask, valid=valid)
    arrays = {name: np.asarray(arr) for name, arr in arrays.items()}
    bt = arrays["state"].shape[:2]
    for name in ("state", "input", "output", "mask", "valid"):
        arr, ndim = arrays[name], len(_VAR_DIMS[name])
        if arr.ndim != ndim or arr.shape[:2] != bt or (ndim == 3 and arr.dtype.kind != "f"):
            want = "float [B, T, n]" if ndim == 3 else "[B, T]"
            raise ValueError(f"{name} must be {want} like state; got {arr.dtype} {arr.shape}")
    (b, t, n), o, target = arrays["state"].shape, arrays["output"].shape[2], arrays["target"]
    if target.shape == (b, t) and target.dtype.kind in "iu":
        target_kind = "class"
    elif target.shape == (b, t, o) and target.dtype.kind == "f":
        target_kind = "continuous"
    else:
        msg = f"targets must be int class ids ({b}, {t}) or float ({b}, {t}, {o})"
        raise ValueError(f"{msg}; got {target.dtype} {target.shape}")
    dt = float(dt)
    if not (math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be a positive number of ms; got {dt}")
    arrays["mask"] = m if (m := arrays["mask"]).dtype.kind == "f" else m.astype(np.float32)
    arrays["valid"] = arrays["valid"].astype(bool, copy=False)
    if not isinstance(trials, pd.DataFrame) or len(trials) != b:
        raise ValueError(f"trials must be a DataFrame with {b} rows; got {type(trials).__name__}")
    if "module" not in unit_coords:
        raise ValueError(f"unit_coords needs a 'module' entry; got keys {sorted(unit_coords)}")
    coords: dict[str, Any] = {
        "trial": np.arange(b, dtype=np.int64),
        "time": ("time", np.arange(t, dtype=np.float64) * dt, {"units": "ms"}),
        "unit": np.arange(n, dtype=np.int64),
        "input_channel": np.arange(arrays["input"].shape[2], dtype=np.int64),
        "output_channel": np.arange(o, dtype=np.int64),
    }
    for key, values in unit_coords.items():
        column = _sanitise_column(pd.Series(list(values), dtype=object).infer_objects())
        if str(key) in coords or str(key) in _VAR_DIMS or column.shape != (n,):
            msg = f"unit_coords[{key!r}]: need {n} entries and a name that is not taken"
            raise ValueError(f"{msg}; got {len(column)} entries")
        coords[str(key)] = ("unit", column)
    for column in trials.columns:
        name = str(column)
        while name in coords or name in _VAR_DIMS:
            name = f"trial_{name}"
        coords[name] = ("trial", _sanitise_column(trials[column]))
    meta = dict(schema=SCHEMA, schema_version=SCHEMA_VERSION, dt=dt, target_kind=target_kind)
    for key, value in (attrs or {}).items():
        value = _encode_attr(value)
        if key in meta and meta[key] != value:
            raise ValueError(f"attrs[{key!r}] = {value!r} conflicts with {meta[key]!r}")
        meta[str(key)] = value
    dims = _VAR_DIMS | {"target": _BT + ("output_channel",) * (target_kind == "continuous")}
    data_vars: dict[str, Any] = {name: (dims[name], arr) for name, arr in arrays.items()}
    for name, arr in (covariates or {}).items():
        data_vars[str(name)] = _covariate(str(name), np.asarray(arr), b, t, data_vars, coords)
    return xr.Dataset(data_vars, coords=coords, attrs=meta)


def _covariate(name: str, arr: np.ndarray, b: int, t: int, taken: Mapping, coords: dict) -> Any:
    if name in taken or name in coords or arr.ndim < 1 or arr.shape[0] != b:
        raise ValueError(
            f"covariates[{name!r}]: need an array [B={b}, ...] under a name not already used; "
            f"got shape {arr.shape}"
        )
    lead = ("trial", "time") if arr.ndim >= 2 and arr.shape[1] == t else ("trial",)
    rest = [f"{name}_dim{i}" for i in range(len(lead), arr.ndim)]
    if name == "position" and arr.shape[len(lead) :] == (2,):
        rest = ["space"]
        coords.setdefault("space", np.array(["x", "y"], dtype=object))
    return ((*lead, *rest), arr, {"covariate": 1})


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def validate_trajectories(ds: xr.Dataset, *, source: str | None = None) -> None:
    """Check a dataset against the trajectory schema; raise listing every problem.

    Parameters
    ----------
    ds : xarray.Dataset
    source : str, optional
        Where it came from (a path), to start the message with.

    Raises
    ------
    TrajectoryFormatError
        Listing every problem (attributes, dims, variables, dtypes, ``time``, NaN/inf).

    Examples
    --------
    >>> validate_trajectories(xr.Dataset())  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    TrajectoryFormatError: invalid neurosim trajectories (8 problem(s)): ...
    """
    problems: list[str] = []
    attrs = ds.attrs
    if "schema" not in attrs:
        problems.append(
            "this is not a neurosim trajectory file: attribute 'schema' is missing; "
            f"found attrs {sorted(map(str, attrs))}"
        )
    elif attrs["schema"] != SCHEMA:
        problems.append(f"attribute 'schema' is {attrs['schema']!r}; expected {SCHEMA!r}")
    version, dt, kind = (attrs.get(k) for k in ("schema_version", "dt", "target_kind"))
    if version is None:
        problems.append("attribute 'schema_version' is missing")
    elif not (_is_real(version) and version == SCHEMA_VERSION):
        problems.append(f"unsupported schema_version {version!r}; expected {SCHEMA_VERSION}")
    if not (_is_real(dt) and math.isfinite(dt) and dt > 0):
        problems.append(f"attribute 'dt' (ms) must be a positive number; found {dt!r}")
        dt = None
    if kind not in ("class", "continuous"):
        problems.append(f"attribute 'target_kind' must be 'class' or 'continuous'; found {kind!r}")
        kind = None
    if missing := [d for d in _DIMS if d not in ds.dims]:
        problems.append(f"dimensions missing: {missing}; found {sorted(map(str, ds.dims))}")
    if kind is None and "target" in ds.data_vars:
        kind = "class" if ds["target"].ndim == 2 else "continuous"
    expected = _VAR_DIMS | {"target": _BT + ("output_channel",) * (kind == "continuous")}
    kinds = dict(valid="b", target="iu" if kind == "class" else "f")
    if absent := {n: d for n, d in expected.items() if n not in ds.data_vars}:
        want = ", ".join(f"{n!r} {d}" for n, d in absent.items())
        problems.append(f"variables missing: {want}; found {sorted(map(str, ds.data_vars))}")
    for name, dims in expected.items():
        if name in absent:
            continue
        var = ds[name]
        if var.dims != dims and not (name in _CONDITIONED and var.dims == ("condition", *dims)):
            problems.append(f"variable {name!r} has dims {var.dims}; expected {dims}")
        if var.dtype.kind not in (want_kind := kinds.get(name, "f")):
            what = {"f": "float", "b": "bool", "iu": "integer"}[want_kind]
            note = f" for target_kind {kind!r}" if name == "target" else ""
            problems.append(f"variable {name!r} has dtype {var.dtype}; expected {what}{note}")
        bad = int(np.count_nonzero(~np.isfinite(var.values))) if var.dtype.kind == "f" else 0
        if bad:
            problems.append(f"variable {name!r} has {bad} of {var.size} values NaN or inf")
    if "time" not in ds.coords:
        problems.append("coordinate 'time' (ms) is missing")
    elif dt is not None:
        time = np.asarray(ds["time"].values, dtype=np.float64).ravel()
        want = np.arange(time.size) * dt
        if ds["time"].dims != ("time",) or not np.allclose(time, want, rtol=1e-9, atol=1e-9 * dt):
            problems.append(
                f"coordinate 'time' must be arange(T) * dt = [0, {dt:g}, {2 * dt:g}, ...] ms; "
                f"found {np.array2string(time[:4], separator=', ')}{' ...' * (time.size > 4)}"
            )
    if "module" not in ds.coords or ds["module"].dims != ("unit",):
        problems.append("coordinate 'module' on dim 'unit' is missing")
    if problems:
        head = f"{source}: " if source else ""
        msg = f"{head}invalid neurosim trajectories ({len(problems)} problem(s)):"
        raise TrajectoryFormatError(msg + "".join(f"\n  - {p}" for p in problems), problems)


def _resolve_format(path: Path, fmt: str | None) -> str:
    resolved = _SUFFIXES.get(path.suffix.lower()) if fmt is None else fmt
    if resolved not in ("netcdf", "zarr"):
        raise ValueError(
            f"cannot save {str(path)!r} with format={fmt!r}: use a suffix among "
            f"{', '.join(_SUFFIXES)} or pass format='netcdf' or 'zarr'"
        )
    return resolved


def _require_zarr() -> None:
    if importlib.util.find_spec("zarr") is None:
        raise ImportError("zarr stores need the 'zarr' package: pip install 'neurosim[zarr]'")


_WRITERS = {
    "netcdf": lambda ds, target: ds.to_netcdf(target, engine="h5netcdf"),
    "zarr": lambda ds, target: ds.to_zarr(target, mode="w-", consolidated=False),
}


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _commit(tmp: Path, path: Path) -> None:
    """Move ``tmp`` into place; an existing directory is moved aside, then deleted."""
    if not path.is_dir() or path.is_symlink():
        os.replace(tmp, path)
        return
    aside = path.with_name(f".{path.name}.old-{os.getpid()}-{secrets.token_hex(4)}")
    os.replace(path, aside)
    try:
        os.replace(tmp, path)
    except BaseException:
        os.replace(aside, path)
        raise
    _remove(aside)


def save(
    ds: xr.Dataset,
    path: str | os.PathLike[str],
    *,
    format: Literal["netcdf", "zarr"] | None = None,
    overwrite: bool = True,
) -> Path:
    """Write trajectories atomically (temporary name, then rename) to netCDF or zarr.

    Parameters
    ----------
    ds : xarray.Dataset
        Trajectories, as made by :func:`build_trajectories`; validated first.
    path : str or path-like
        ``.nc``, ``.netcdf`` or ``.h5`` for netCDF, ``.zarr`` for zarr.
    format : {"netcdf", "zarr"}, optional
        Overrides the suffix.
    overwrite : bool, default True
        If False and ``path`` exists, raise :class:`FileExistsError`.

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> path = save(ds, "run.nc")  # doctest: +SKIP
    """
    path = Path(path)
    fmt = _resolve_format(path, format)
    validate_trajectories(ds)
    if fmt == "zarr":
        _require_zarr()
    if not overwrite and os.path.lexists(path):
        raise FileExistsError(errno.EEXIST, "exists (pass overwrite=True to replace)", str(path))
    if not path.parent.is_dir():
        raise FileNotFoundError(errno.ENOENT, "directory does not exist", str(path.parent))
    out = ds.copy(deep=False)  # new Variable objects over the same arrays
    for name, var in out.variables.items():
        var.encoding = {}
        if fmt == "zarr" and var.dtype.kind == "U" and name not in out.indexes:
            var.values = var.values.astype(object)  # vlen strings: zarr 3 specifies these
    return atomic_write(path, lambda tmp: _WRITERS[fmt](out, tmp), overwrite=overwrite)


def atomic_write(path: str | os.PathLike[str], write: Any, *, overwrite: bool = True) -> Path:
    """Call ``write(tmp)`` on a temporary sibling of ``path``, then rename it into place.

    A failed or interrupted write leaves what was at ``path`` untouched.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        write(tmp)
        if not overwrite and os.path.lexists(path):
            raise FileExistsError(errno.EEXIST, "appeared during the write", str(path))
        _commit(tmp, path)
    except BaseException:
        _remove(tmp)
        raise
    return path


def load(path: str | os.PathLike[str]) -> xr.Dataset:
    """Read trajectories from netCDF or a zarr directory into memory and validate them.

    Parameters
    ----------
    path : str or path-like
        A netCDF file or a zarr directory written by :func:`save`.

    Returns
    -------
    xarray.Dataset
        In memory (the file is closed), validated.

    Raises
    ------
    FileNotFoundError
        If nothing exists at ``path``.
    TrajectoryFormatError
        If the file is damaged, not netCDF/zarr, or does not follow the schema.

    Examples
    --------
    >>> load("run.nc").state.sel(module="sensory").mean("unit")  # doctest: +SKIP
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(errno.ENOENT, "no trajectory file or store here", str(path))
    opts: dict[str, Any] = {"engine": "h5netcdf"}
    if path.is_dir():
        _require_zarr()
        opts = {"engine": "zarr", "consolidated": False, "chunks": None}
    try:
        with xr.open_dataset(path, decode_times=False, decode_timedelta=False, **opts) as raw:
            ds = raw.load()
    except Exception as err:
        msg = f"{path}: the file is damaged or is not a netCDF/HDF5 file or zarr store"
        raise TrajectoryFormatError(f"{msg} ({type(err).__name__}: {err})") from err
    for name, var in ds.variables.items():  # zarr gives StringDType, netCDF may give objects
        if var.dtype.kind in "OT" and name not in ds.indexes:
            values = var.values.astype(object)
            if all(isinstance(v, str) for v in values.flat):
                var.values = values.astype(str)
    for obj in [ds, *ds.variables.values()]:  # netCDF attrs come back as numpy scalars
        obj.attrs = {k: v.item() if isinstance(v, np.generic) else v for k, v in obj.attrs.items()}
    validate_trajectories(ds, source=str(path))
    return ds
