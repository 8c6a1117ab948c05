"""Spatial autocorrelograms of rate maps: NaN-aware normalised autocorrelation by FFT."""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy import fft

from ._rate_maps import _unit_coords

MapsLike = xr.Dataset | xr.DataArray | np.ndarray


def _as_maps(
    rate_maps: MapsLike, name: str = "rate_maps"
) -> tuple[np.ndarray, dict[str, object], tuple[float, float] | None, str]:
    """Maps ``[unit, y, x]`` (float64), unit coordinates, bin size (dy, dx) in m, arena."""
    arena = "square"
    da = rate_maps
    if isinstance(rate_maps, xr.Dataset):
        if "rate_map" not in rate_maps:
            raise KeyError(
                f"{name} has no 'rate_map' variable; it has {sorted(rate_maps.data_vars)}"
            )
        arena = str(rate_maps.attrs.get("arena", "square"))
        da = rate_maps["rate_map"]
    size = None
    if isinstance(da, xr.DataArray):
        arena = str(da.attrs.get("arena", arena))
        if not {"y", "x"} <= set(da.dims) or da.ndim - ("unit" in da.dims) != 2:
            raise ValueError(f"{name} must have dims (unit, y, x) or (y, x); got {da.dims}")
        da = da if "unit" in da.dims else da.expand_dims("unit")
        da = da.transpose("unit", "y", "x")
        if "x" in da.coords and "y" in da.coords and da.sizes["x"] > 1 and da.sizes["y"] > 1:
            size = (float(np.diff(da["y"].values).mean()), float(np.diff(da["x"].values).mean()))
        coords = _unit_coords(da, da.sizes["unit"])
        arr = np.asarray(da.values, dtype=np.float64)
    else:
        arr = np.asarray(rate_maps, dtype=np.float64)
        arr = arr[None] if arr.ndim == 2 else arr
        if arr.ndim != 3:
            raise ValueError(f"{name} must be [units, y, x] or [y, x]; got shape {arr.shape}")
        coords = _unit_coords(None, len(arr))
    if min(arr.shape[1:]) < 3:
        raise ValueError(f"{name} needs at least 3 bins per side; got shape {arr.shape[1:]}")
    if np.isinf(arr).any():
        raise ValueError(f"{name} has infinite values; mark unvisited bins with NaN")
    return arr, coords, size, arena


def _autocorr(maps: np.ndarray) -> np.ndarray:
    """NaN-aware normalised spatial autocorrelation ``[U, 2ny-1, 2nx-1]`` by FFT.

    At each lag, Pearson's r between the map and its shifted copy over the bins both have;
    0 where fewer than 2 bins overlap or either side is constant (as ``np.nan_to_num`` does in
    the reference code).
    """
    _, ny, nx = maps.shape
    mask = np.isfinite(maps)
    x = np.where(mask, maps, 0.0)
    m = mask.astype(np.float64)
    shape = (fft.next_fast_len(2 * ny - 1), fft.next_fast_len(2 * nx - 1))
    fx, fm, fxx = (fft.rfft2(a, s=shape, axes=(-2, -1)) for a in (x, m, x * x))
    rows = np.arange(-(ny - 1), ny) % shape[0]
    cols = np.arange(-(nx - 1), nx) % shape[1]

    def corr(fa: np.ndarray, fb: np.ndarray) -> np.ndarray:  # sum_i a(i) b(i + lag)
        c = fft.irfft2(np.conj(fa) * fb, s=shape, axes=(-2, -1))
        return c[:, rows][:, :, cols]

    n = np.rint(corr(fm, fm))
    s1, s2 = corr(fx, fm), corr(fm, fx)
    q1, q2 = corr(fxx, fm), corr(fm, fxx)
    sxy = corr(fx, fx)
    v1, v2 = n * q1 - s1 * s1, n * q2 - s2 * s2
    tol = 1e-9 * n * (x * x).sum((1, 2))[:, None, None]
    ok = (n >= 2) & (v1 > tol) & (v2 > tol)
    out = np.zeros(n.shape)
    np.divide(n * sxy - s1 * s2, np.sqrt(np.where(ok, v1 * v2, 1.0)), out=out, where=ok)
    return np.clip(out, -1.0, 1.0)


def compute_autocorrelograms(rate_maps: MapsLike) -> xr.DataArray:
    """Spatial autocorrelogram of each rate map (NaN-aware, normalised).

    At lag ``(dy, dx)`` the value is Pearson's correlation between the map and the map
    shifted by that lag, over the bins where both are defined (unvisited NaN bins are left
    out), computed for all lags and units at once by FFT. Lags with fewer than two shared
    bins, or where either side is constant, are 0, as in the reference code.

    Parameters
    ----------
    rate_maps : xarray.Dataset, xarray.DataArray or numpy.ndarray
        From :func:`compute_rate_maps` (or its ``rate_map``), or ``[units, y, x]`` / ``[y, x]``.

    Returns
    -------
    xarray.DataArray
        ``autocorrelogram (unit, lag_y, lag_x)``, ``2 n - 1`` lags per side for ``n`` bins,
        1 at zero lag; lag coordinates in metres (in bins for plain arrays).

    Examples
    --------
    >>> import numpy as np
    >>> y, x = np.mgrid[0:20, 0:20]
    >>> sac = compute_autocorrelograms(np.cos(2 * np.pi * x / 5.0))
    >>> sac.dims, sac.shape, float(sac.sel(lag_y=0, lag_x=0)), float(sac.sel(lag_y=3, lag_x=5))
    (('unit', 'lag_y', 'lag_x'), (1, 39, 39), 1.0, 1.0)
    """
    arr, coords, size, _ = _as_maps(rate_maps)
    _, ny, nx = arr.shape
    dy, dx = size if size is not None else (1.0, 1.0)
    units = {"units": "m" if size is not None else "bins"}
    return xr.DataArray(
        _autocorr(arr),
        dims=("unit", "lag_y", "lag_x"),
        coords={
            **coords,
            "lag_y": ("lag_y", np.arange(-(ny - 1), ny) * dy, units),
            "lag_x": ("lag_x", np.arange(-(nx - 1), nx) * dx, units),
        },
        name="autocorrelogram",
    )
