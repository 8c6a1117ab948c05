"""Spatial rate maps and head-direction tuning: occupancy-normalised activity per covariate bin.

Both take ``activity [samples, units]`` with a covariate per sample (positions ``[samples, 2]``
in metres, head direction ``[samples]`` in rad), labelled ``xarray.DataArray`` objects with a
``unit`` dim, or a trajectory ``Dataset`` (``state (trial, time, unit)`` with per-step
covariates such as ``position (trial, time, space)``), pooling every valid step of every trial.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Literal

import numpy as np
import xarray as xr
from scipy import ndimage, sparse

Array = np.ndarray | xr.DataArray


def _unit_coords(da: xr.DataArray | None, n_units: int) -> dict[str, object]:
    if da is None or "unit" not in da.dims:
        return {"unit": np.arange(n_units)}
    return {
        str(name): (("unit",), c.values) if name != "unit" else c.values
        for name, c in da.coords.items()
        if c.dims == ("unit",)
    } or {"unit": np.arange(n_units)}


def _samples(
    activity: xr.Dataset | Array,
    covariate: str | Array | None,
    *,
    field: str,
    default: str,
    variable: str,
    trailing: str | None,
    valid_only: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, object]]:
    """Pool samples: activity ``[N, U]`` (a view where possible), covariate ``[N, ...]``,
    which samples to keep (valid, finite covariate) and the ``unit`` coordinates.

    ``field`` names the covariate argument in messages, ``default`` its dataset variable;
    ``trailing`` names the covariate's extra dim (``"space"`` for positions), if any.
    """
    name = default if covariate is None else covariate
    valid = None
    if isinstance(activity, xr.Dataset):
        ds = activity
        if variable not in ds:
            raise KeyError(f"variable {variable!r} not in dataset; it has {sorted(ds.data_vars)}")
        if isinstance(name, str):
            if name not in ds:
                raise KeyError(
                    f"covariate {name!r} not in dataset; it has {sorted(map(str, ds.variables))}"
                    f" (pass it as an array, or its name)"
                )
            name = ds[name]
        if valid_only and "valid" in ds:
            valid = ds["valid"]
        activity = ds[variable]
    elif isinstance(name, str):
        raise ValueError(f"{field} must be an array when activity is not a Dataset; got {name!r}")
    cov = name
    if isinstance(activity, xr.DataArray) and "unit" in activity.dims:
        lead = [d for d in activity.dims if d != "unit"]
        act = np.asarray(activity.transpose(*lead, "unit").values)
        coords = _unit_coords(activity, act.shape[-1])
        if isinstance(cov, xr.DataArray):
            extra = [d for d in cov.dims if d not in lead]
            if trailing == "space" and "space" in cov.dims and "space" in cov.coords:
                labels = [str(v) for v in cov["space"].values]
                if {"x", "y"} <= set(labels):
                    cov = cov.sel(space=["x", "y"])
            if len(extra) > (trailing is not None):
                want = f"{tuple(lead)}" + (f" plus {trailing!r}" if trailing else "")
                raise ValueError(
                    f"{field} dims {cov.dims} do not match the activity's sample dims: want {want}"
                )
            if any(d not in cov.dims for d in lead):  # e.g. one trajectory for all conditions
                cov = cov.broadcast_like(activity.isel(unit=0))
            cov = cov.transpose(*lead, *extra)
        keep = np.ones(act.shape[:-1], bool)
        if valid is not None:
            keep = np.asarray(valid.broadcast_like(activity.isel(unit=0)).transpose(*lead), bool)
        act = act.reshape(-1, act.shape[-1])
        cov_arr = np.asarray(cov, dtype=np.float64)
        cov_arr = cov_arr.reshape((-1, *cov_arr.shape[len(lead) :]))
        keep = keep.reshape(-1)
    else:
        act = np.asarray(activity)
        if act.ndim != 2:
            raise ValueError(
                f"activity must be 2-D [samples, units] (or labelled with a 'unit' dim); "
                f"got shape {act.shape}"
            )
        coords = _unit_coords(None, act.shape[1])
        cov_arr = np.asarray(cov, dtype=np.float64)
        keep = np.ones(len(act), bool)
    want = (len(act), 2) if trailing is not None else (len(act),)
    if cov_arr.shape != want:
        raise ValueError(
            f"{field} must have shape {want} to match activity {act.shape}; got {cov_arr.shape}"
        )
    if act.dtype.kind not in "f":
        act = act.astype(np.float64)
    keep &= np.isfinite(cov_arr.reshape(len(act), -1)).all(1)
    if not keep.any():
        raise ValueError(f"no valid samples: every sample is padding or has a non-finite {field}")
    return act, cov_arr, keep, coords


def _smooth(x: np.ndarray, sigma: float, mode: str = "constant") -> np.ndarray:
    """Gaussian smoothing over the last two axes (or the last for 1-D curves); sigma in bins."""
    if sigma <= 0:
        return x
    axes = 2 if mode == "constant" else 1
    sig = (0.0,) * (x.ndim - axes) + (float(sigma),) * axes
    return ndimage.gaussian_filter(x, sig, mode=mode)


def _binned_sums(
    index: np.ndarray, act: np.ndarray, keep: np.ndarray, n_bins: int, field: str
) -> tuple[np.ndarray, np.ndarray, int]:
    """Samples per bin ``[n_bins]``, summed activity ``[units, n_bins]`` and the sample count.

    All units at once (a sparse one-hot product), in float64, over blocks of samples so a
    large float32 ``act`` is never copied whole; samples with non-finite activity are dropped.
    """
    counts = np.zeros(n_bins)
    sums = np.zeros((n_bins, act.shape[1]))
    step = max(1, 2**22 // max(act.shape[1], 1))
    for start in range(0, len(act), step):
        block = np.asarray(act[start : start + step][keep[start : start + step]], np.float64)
        idx = index[start : start + step][keep[start : start + step]]
        finite = np.isfinite(block).all(1)
        if not finite.all():
            block, idx = block[finite], idx[finite]
        onehot = sparse.csr_matrix(
            (np.ones(len(idx)), (idx, np.arange(len(idx)))), shape=(n_bins, len(idx))
        )
        counts += np.bincount(idx, minlength=n_bins)
        sums += onehot @ block
    if not counts.any():
        raise ValueError(
            f"no valid samples: every sample with a finite {field} has non-finite activity"
        )
    return counts, sums.T, int(counts.sum())


def _normalised(sums: np.ndarray, counts: np.ndarray, sigma: float, mode: str) -> np.ndarray:
    """Occupancy-normalised (Nadaraya-Watson) rate: smoothed sums / smoothed occupancy."""
    num, den = _smooth(sums, sigma, mode), _smooth(counts, sigma, mode)
    out = np.zeros(num.shape)
    np.divide(num, den, out=out, where=np.broadcast_to(den > 0, num.shape))
    return out


def _check_number(name: str, value: object, *, low: float, integer: bool = False) -> float:
    ok = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
    if not ok or not np.isfinite(value) or value < low or (integer and int(value) != value):
        kind = "an integer" if integer else "a number"
        raise ValueError(f"{name} must be {kind} >= {low}; got {value!r}")
    return float(value)


def compute_rate_maps(
    activity: xr.Dataset | Array,
    positions: str | Array | None = None,
    *,
    variable: str = "state",
    arena_size: float = 2.2,
    bounds: Sequence[Sequence[float]] | None = None,
    n_bins: int = 20,
    smoothing_sigma: float = 0.0,
    min_occupancy: int = 1,
    arena: Literal["square", "circle"] = "square",
    valid_only: bool = True,
) -> xr.Dataset:
    """Spatial rate map of every unit: mean activity per position bin, occupancy-normalised.

    Samples are binned on a regular ``n_bins x n_bins`` grid over the arena; a unit's rate in
    a bin is its summed activity there divided by the number of samples there (the occupancy),
    so uneven dwell does not bias the map. With ``smoothing_sigma > 0`` the summed activity
    and the occupancy are both Gaussian-smoothed (``sigma`` in bins, zero outside the arena)
    before dividing. Bins visited fewer than ``min_occupancy`` times (raw counts), and for a
    circular arena bins whose centre lies outside the inscribed circle, are NaN.

    Parameters
    ----------
    activity : xarray.Dataset, xarray.DataArray or numpy.ndarray
        A trajectory dataset (``ds[variable]`` over ``trial, time, unit``; every valid step of
        every trial is a sample), a DataArray with a ``unit`` dim, or ``[samples, units]``.
    positions : str, xarray.DataArray or numpy.ndarray, optional
        ``[samples, 2]`` (x, y) in metres, a DataArray with the activity's sample dims and a
        ``space`` dim (``x``, ``y``), or the name of a dataset variable (default
        ``"position"`` when ``activity`` is a dataset).
    variable : str, default "state"
        The dataset variable holding the activity.
    arena_size : float, default 2.2
        Side of a square arena centred on the origin, in metres (Sorscher et al.'s 2.2 m box).
    bounds : ((x_min, x_max), (y_min, y_max)), optional
        Arena extent in metres; overrides ``arena_size``.
    n_bins : int, default 20
        Bins per side (20 as in both reference codebases: 11 cm in the 2.2 m box).
    smoothing_sigma : float, default 0.0
        Gaussian smoothing in bins (0: plain binned means, as in the reference code).
    min_occupancy : int, default 1
        Fewest samples for a bin to have a rate.
    arena : {"square", "circle"}, default "square"
    valid_only : bool, default True
        Use only the dataset's valid steps (``ds.valid``). Samples with a non-finite position
        or activity are always dropped.

    Returns
    -------
    xarray.Dataset
        ``rate_map (unit, y, x)`` (NaN where unvisited), ``occupancy (y, x)`` (samples per
        bin), coordinates ``x`` and ``y`` (bin centres, m) and the unit coordinates; attrs
        ``arena``, ``bounds`` (JSON), ``n_bins``, ``smoothing_sigma``, ``min_occupancy``,
        ``n_samples``.

    Raises
    ------
    ValueError
        Bad arguments (the message names the field and value), or positions outside the
        bounds (the message gives their range).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> pos = rng.uniform(-1.1, 1.1, (20000, 2))
    >>> act = np.stack([pos[:, 0] + 1.1, np.ones(20000)], axis=1)  # a ramp and a constant
    >>> maps = compute_rate_maps(act, pos, n_bins=11)
    >>> maps.rate_map.dims, maps.rate_map.shape
    (('unit', 'y', 'x'), (2, 11, 11))
    >>> np.allclose(maps.rate_map[0].mean("y"), maps.x + 1.1, atol=0.01)
    True
    """
    n = int(_check_number("n_bins", n_bins, low=2, integer=True))
    sigma = _check_number("smoothing_sigma", smoothing_sigma, low=0)
    min_occ = _check_number("min_occupancy", min_occupancy, low=1, integer=True)
    if arena not in ("square", "circle"):
        raise ValueError(f"arena must be 'square' or 'circle'; got {arena!r}")
    if bounds is None:
        half = _check_number("arena_size", arena_size, low=0) / 2
        if half == 0:
            raise ValueError(f"arena_size must be > 0 (metres); got {arena_size!r}")
        bounds = ((-half, half), (-half, half))
    try:
        box = np.asarray(bounds, dtype=np.float64).reshape(2, 2)
        ok = bool(np.isfinite(box).all() and (box[:, 1] > box[:, 0]).all())
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(
            f"bounds must be ((x_min, x_max), (y_min, y_max)) in metres; got {bounds!r}"
        )
    act, pos, keep, coords = _samples(
        activity,
        positions,
        field="positions",
        default="position",
        variable=variable,
        trailing="space",
        valid_only=valid_only,
    )
    lo, hi = box[:, 0], box[:, 1]
    tol = 1e-9 * (hi - lo)
    inside = pos[keep]
    if ((inside < lo - tol) | (inside > hi + tol)).any():
        rng = [(float(inside[:, i].min()), float(inside[:, i].max())) for i in (0, 1)]
        raise ValueError(
            f"positions fall outside bounds={box.tolist()}: x spans {rng[0]}, y spans {rng[1]} "
            "(pass bounds= or arena_size= for this arena)"
        )
    ij = np.clip(((inside - lo) / (hi - lo) * n).astype(np.int64), 0, n - 1)
    index = np.zeros(len(act), np.int64)
    index[keep] = ij[:, 1] * n + ij[:, 0]
    counts, sums, n_used = _binned_sums(index, act, keep, n * n, "position")
    counts, sums = counts.reshape(n, n), sums.reshape(-1, n, n)
    rate = _normalised(sums, counts, sigma, "constant")
    centres = [lo[i] + (np.arange(n) + 0.5) * (hi[i] - lo[i]) / n for i in (0, 1)]
    missing = counts < min_occ
    if arena == "circle":
        cx, cy = box.mean(1)
        gx, gy = np.meshgrid(centres[0], centres[1])
        missing |= ((gx - cx) / (hi[0] - cx)) ** 2 + ((gy - cy) / (hi[1] - cy)) ** 2 > 1
    rate[:, missing] = np.nan
    metres = {"units": "m"}
    return xr.Dataset(
        {
            "rate_map": (("unit", "y", "x"), rate, {"arena": arena}),
            "occupancy": (("y", "x"), counts, {"units": "samples"}),
        },
        coords={**coords, "x": ("x", centres[0], metres), "y": ("y", centres[1], metres)},
        attrs={
            "arena": arena,
            "bounds": json.dumps(box.tolist()),
            "n_bins": n,
            "smoothing_sigma": sigma,
            "min_occupancy": int(min_occ),
            "n_samples": n_used,
            "variable": variable,
        },
    )


def compute_head_direction_tuning(
    activity: xr.Dataset | Array,
    head_direction: str | Array | None = None,
    *,
    variable: str = "state",
    n_bins: int = 36,
    smoothing_sigma: float = 0.0,
    min_occupancy: int = 1,
    valid_only: bool = True,
) -> xr.Dataset:
    """Head-direction tuning curves, Rayleigh vector length and preferred direction per unit.

    Head directions are wrapped to [-π, π) and binned in ``n_bins`` equal bins; the tuning
    curve is the occupancy-normalised mean activity per bin (optionally smoothed circularly,
    ``smoothing_sigma`` in bins). From the curve ``r(θ_k)`` at the bin centres, the mean
    resultant vector is ``R = Σ r(θ_k) exp(iθ_k) / Σ r(θ_k)`` over bins with a rate: its length
    ``|R|`` (the Rayleigh vector length, 0 for flat tuning, 1 for all activity in one bin) and
    angle (the preferred direction). Activity should be non-negative (rates); shift or rectify
    signed activity first. A unit with ``Σ r <= 0`` gets NaN.

    Parameters
    ----------
    activity : xarray.Dataset, xarray.DataArray or numpy.ndarray
        As for :func:`compute_rate_maps`.
    head_direction : str, xarray.DataArray or numpy.ndarray, optional
        ``[samples]`` in rad, a DataArray over the activity's sample dims, or a dataset
        variable name (default ``"head_direction"``).
    variable : str, default "state"
    n_bins : int, default 36
        10° bins.
    smoothing_sigma : float, default 0.0
        Circular Gaussian smoothing in bins.
    min_occupancy : int, default 1
        Fewest samples for a bin to have a rate (else NaN, left out of the vector).
    valid_only : bool, default True

    Returns
    -------
    xarray.Dataset
        ``tuning (unit, angle)``, ``occupancy (angle)``, ``vector_length (unit)``,
        ``preferred_direction (unit)`` in (-π, π]; ``angle`` holds bin centres in rad.

    Examples
    --------
    >>> import numpy as np
    >>> hd = np.random.default_rng(0).uniform(-np.pi, np.pi, 50000)
    >>> act = np.exp(2.0 * np.cos(hd - 1.0))[:, None]  # von Mises tuning, kappa 2, mu 1 rad
    >>> tc = compute_head_direction_tuning(act, hd, n_bins=60)
    >>> round(float(tc.preferred_direction[0]), 2), round(float(tc.vector_length[0]), 2)
    (1.0, 0.7)
    """
    n = int(_check_number("n_bins", n_bins, low=3, integer=True))
    sigma = _check_number("smoothing_sigma", smoothing_sigma, low=0)
    min_occ = _check_number("min_occupancy", min_occupancy, low=1, integer=True)
    act, hd, keep, coords = _samples(
        activity,
        head_direction,
        field="head_direction",
        default="head_direction",
        variable=variable,
        trailing=None,
        valid_only=valid_only,
    )
    wrapped = np.mod(hd[keep] + np.pi, 2 * np.pi)
    index = np.zeros(len(act), np.int64)
    index[keep] = np.minimum((wrapped / (2 * np.pi) * n).astype(np.int64), n - 1)
    counts, sums, _ = _binned_sums(index, act, keep, n, "head direction")
    tuning = _normalised(sums, counts, sigma, "wrap")
    angle = -np.pi + (np.arange(n) + 0.5) * 2 * np.pi / n
    has = counts >= min_occ
    tuning[:, ~has] = np.nan
    r = np.where(has, tuning, 0.0)
    total = r.sum(1)
    vec = r @ np.exp(1j * angle)
    good = total > 0
    length = np.full(len(r), np.nan)
    pref = np.full(len(r), np.nan)
    length[good] = np.abs(vec[good]) / total[good]
    pref[good] = np.angle(vec[good])
    rad = {"units": "rad"}
    return xr.Dataset(
        {
            "tuning": (("unit", "angle"), tuning),
            "occupancy": ("angle", counts, {"units": "samples"}),
            "vector_length": ("unit", length),
            "preferred_direction": ("unit", pref, rad),
        },
        coords={**coords, "angle": ("angle", angle, rad)},
        attrs={"n_bins": n, "smoothing_sigma": sigma, "min_occupancy": int(min_occ)},
    )
