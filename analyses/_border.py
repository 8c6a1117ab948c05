"""Border score of rate maps (Solstad et al. 2008): (CM − DM) / (CM + DM)."""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy import ndimage

from ._rate_maps import _check_number


def _border_one(m: np.ndarray, threshold: float, min_bins: float) -> float:
    finite = np.isfinite(m)
    if not finite.any():
        return float("nan")
    peak = m[finite].max()
    if peak <= 0:
        return float("nan")
    above = finite & (m > threshold * peak)
    labels, k = ndimage.label(above)
    sizes = np.bincount(labels.ravel(), minlength=k + 1)
    fields = [f for f in range(1, k + 1) if sizes[f] >= min_bins]
    if not fields:
        return float("nan")
    ny, nx = m.shape
    walls = [(slice(0, 1), slice(None)), (slice(-1, None), slice(None))]
    walls += [(slice(None), slice(0, 1)), (slice(None), slice(-1, None))]
    cm = 0.0
    for wall in walls:
        wall_labels, wall_finite = labels[wall].ravel(), finite[wall].ravel()
        if wall_finite.any():
            for f in fields:
                cm = max(cm, float((wall_labels == f).sum() / wall_finite.sum()))
    in_field = np.isin(labels, fields)
    iy, ix = np.nonzero(in_field)
    dist = np.minimum.reduce([iy + 0.5, ny - 0.5 - iy, ix + 0.5, nx - 0.5 - ix])
    rate = m[iy, ix]
    dm = float((rate * dist).sum() / rate.sum()) / (min(ny, nx) / 2)
    return (cm - dm) / (cm + dm)


def _border_scores(
    maps: np.ndarray, threshold: float, min_area: float, bin_area: float | None
) -> np.ndarray:
    min_bins = min_area / bin_area if bin_area else 0.0
    return np.array([_border_one(m, threshold, min_bins) for m in maps])


def border_score(
    rate_map: xr.DataArray | np.ndarray,
    *,
    field_threshold: float = 0.3,
    min_field_area: float = 0.02,
    bin_size: float | None = None,
) -> float:
    """Border score ``(CM − DM) / (CM + DM)`` of one rate map of a square arena (Solstad 2008).

    Fields are 4-connected groups of bins above ``field_threshold`` times the map's peak rate,
    at least ``min_field_area`` large. ``CM`` is the largest fraction of one wall's bins
    (the outermost row or column, its visited bins) covered by one field. ``DM`` is the
    rate-weighted mean distance of the field bins to the nearest wall (from the bin centre,
    in bins), divided by half the shorter side in bins, so it lies in (0, 1]. The score runs
    from −1 (fields away from the walls) to +1 (a field along a whole wall, infinitely thin).

    Parameters
    ----------
    rate_map : xarray.DataArray or numpy.ndarray
        ``(y, x)``, NaN where unvisited.
    field_threshold : float, default 0.3
        Fraction of the peak rate (Solstad et al. 2008).
    min_field_area : float, default 0.02
        Smallest field in m² (200 cm², Solstad et al. 2008). It needs the bin size: from the
        ``x``/``y`` coordinates of a DataArray, else ``bin_size``; without either, every
        field counts.
    bin_size : float, optional
        Side of a bin in metres, for plain arrays.

    Returns
    -------
    float
        NaN when the map has no field (no finite bin, or a peak rate <= 0).

    Examples
    --------
    >>> import numpy as np
    >>> y, x = np.mgrid[0:20, 0:20]
    >>> round(border_score(np.exp(-(x / 1.5) ** 2)), 2)  # a field along the left wall
    0.84
    >>> round(border_score(np.exp(-((x - 9.5) ** 2 + (y - 9.5) ** 2) / 8)), 2)  # central
    -1.0
    """
    threshold = _check_number("field_threshold", field_threshold, low=0)
    min_area = _check_number("min_field_area", min_field_area, low=0)
    area = None
    if isinstance(rate_map, xr.DataArray) and {"x", "y"} <= set(rate_map.coords):
        rate_map = rate_map.transpose("y", "x")
        area = abs(float(np.diff(rate_map.x).mean() * np.diff(rate_map.y).mean()))
    elif bin_size is not None:
        area = _check_number("bin_size", bin_size, low=0) ** 2
    m = np.asarray(rate_map, dtype=np.float64)
    if m.ndim != 2 or min(m.shape) < 2:
        raise ValueError(f"rate_map must be one 2-D map (y, x); got shape {m.shape}")
    return float(_border_scores(m[None], threshold, min_area, area)[0])
