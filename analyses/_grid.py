"""Grid-cell scores of rate maps: gridness (score60, score90), spacing, orientation, shuffles.

The gridness score follows the code of Banino et al. (2018) and Sorscher et al. (2019), both of
which use DeepMind's ``scores.py``: the NaN-aware spatial autocorrelogram (SAC) of the rate
map is rotated by 30, 45, 60, 90, 120, 135 and 150° (cubic spline, ``scipy.ndimage.rotate``),
and the rotated SAC is correlated with the original over annuli; the scores are maximised over
the annuli. See ``docs/grid_analyses.md`` for the exact convention.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import xarray as xr
from scipy import ndimage

from ._autocorrelograms import MapsLike, _as_maps, _autocorr
from ._border import _border_scores
from ._rate_maps import _check_number

ANGLES = (30, 45, 60, 90, 120, 135, 150)
INNER_RADIUS = 0.2
OUTER_RADII = tuple(float(r) for r in np.linspace(0.4, 1.0, 10))
_CHUNK = 128  # units rotated at once (bounds memory: chunk x 7 x SAC size)


def _annuli(
    shape: tuple[int, int], inner: float, outer: Sequence[float]
) -> tuple[np.ndarray, float]:
    """Boolean annulus masks ``[K, H, W]`` on the SAC grid: ``inner·n < r <= outer·n``."""
    h, w = shape
    n = min(h + 1, w + 1) / 2  # bins per side of the rate map
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot(yy - (h - 1) / 2, xx - (w - 1) / 2)
    return np.stack([(r > inner * n) & (r <= o * n) for o in outer]), n


def _check_annuli(inner: float, outer: Sequence[float] | None) -> tuple[float, tuple[float, ...]]:
    inner = _check_number("inner_radius", inner, low=0)
    outer = OUTER_RADII if outer is None else tuple(np.atleast_1d(np.asarray(outer, float)))
    if not outer or not all(np.isfinite(o) and o > inner for o in outer):
        raise ValueError(
            f"outer_radii must be numbers > inner_radius ({inner}), in units of the rate "
            f"map's bins per side; got {outer!r}"
        )
    return inner, outer


def _sac_scores(
    sac: np.ndarray, inner: float, outer: Sequence[float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """score60, score90 (max over annuli) and the index of the best annulus for each."""
    masks, _ = _annuli(sac.shape[1:], inner, outer)
    if not masks.reshape(len(masks), -1).any(1).all():
        raise ValueError(f"an annulus ({inner}, {list(outer)}) holds no lag of the SAC")
    mt = masks.reshape(len(masks), -1).T.astype(np.float64)  # [P, K]
    area = mt.sum(0)
    s60 = np.empty((len(sac), len(outer)))
    s90 = np.empty_like(s60)
    for start in range(0, len(sac), _CHUNK):
        s = sac[start : start + _CHUNK]
        rot = np.stack([ndimage.rotate(s, a, axes=(2, 1), reshape=False) for a in ANGLES], 1)
        flat = s.reshape(len(s), -1)
        mean = flat @ mt / area  # [u, K]
        var = (flat * flat) @ mt / area - mean**2 + 1e-5
        rflat = rot.reshape(len(s), len(ANGLES), -1)
        cross = ((flat[:, None] * rflat) @ mt - mean[:, None] * (rflat @ mt)) / area
        c = dict(zip(ANGLES, np.moveaxis(cross / var[:, None], 1, 0), strict=True))
        s60[start : start + _CHUNK] = (c[60] + c[120]) / 2 - (c[30] + c[90] + c[150]) / 3
        s90[start : start + _CHUNK] = c[90] - (c[45] + c[135]) / 2
    i60, i90 = s60.argmax(1), s90.argmax(1)
    rows = np.arange(len(sac))
    return s60[rows, i60], s90[rows, i90], i60, i90


def _informative(maps: np.ndarray) -> np.ndarray:
    """Units whose maps have at least 2 finite bins that are not all equal."""
    finite = np.isfinite(maps)
    hi = np.where(finite, maps, -np.inf).max((1, 2))
    lo = np.where(finite, maps, np.inf).min((1, 2))
    return (finite.sum((1, 2)) >= 2) & (hi > lo)


def gridness(
    rate_map_or_autocorr: MapsLike,
    *,
    kind: str = "auto",
    inner_radius: float = INNER_RADIUS,
    outer_radii: Sequence[float] | None = None,
) -> tuple[float, float]:
    """Gridness scores ``(score60, score90)`` of one rate map (or its autocorrelogram).

    ``score60 = mean(c60, c120) − mean(c30, c90, c150)`` and ``score90 = c90 − mean(c45,
    c135)``, where ``cθ`` correlates the spatial autocorrelogram with itself rotated by θ over
    an annulus; each score is the maximum over the annuli (inner radius ``0.2 n``, outer
    radii ``0.4 n … 1.0 n`` in 10 steps, for a map of ``n`` bins per side), as in the code of
    Banino et al. 2018 and Sorscher et al. 2019. Hexagonal grids score high on ``score60``,
    square grids on ``score90``.

    Parameters
    ----------
    rate_map_or_autocorr : xarray.DataArray or numpy.ndarray
        A rate map ``(y, x)`` (NaN where unvisited), or an autocorrelogram: a DataArray with
        dims ``lag_y, lag_x`` (from :func:`compute_autocorrelograms`) or any array with
        ``kind="autocorrelogram"``.
    kind : {"auto", "rate_map", "autocorrelogram"}, default "auto"
        ``"auto"``: an autocorrelogram when the dims are ``lag_y, lag_x``, else a rate map.
    inner_radius, outer_radii : float, sequence of float
        Annuli in units of the rate map's bins per side.

    Returns
    -------
    (float, float)
        NaN for a map with fewer than two distinct finite values.

    Examples
    --------
    >>> import numpy as np
    >>> c = np.linspace(-1.1, 1.1, 45)[:-1] + 0.025  # 44 bin centres, 5 cm bins
    >>> x, y = np.meshgrid(c, c)
    >>> k = 4 * np.pi / (np.sqrt(3) * 0.5)  # hexagonal grid of spacing 0.5 m
    >>> angles = np.arange(3) * np.pi / 3  # three plane waves 60° apart
    >>> hexagonal = sum(np.cos(k * (x * np.cos(a) + y * np.sin(a))) for a in angles)
    >>> [round(s, 2) for s in gridness(hexagonal)]
    [1.28, 0.27]
    """
    if kind not in ("auto", "rate_map", "autocorrelogram"):
        raise ValueError(f"kind must be 'auto', 'rate_map' or 'autocorrelogram'; got {kind!r}")
    inner, outer = _check_annuli(inner_radius, outer_radii)
    x = rate_map_or_autocorr
    dims = x.dims if isinstance(x, xr.DataArray) else ()
    is_sac = kind == "autocorrelogram" or (kind == "auto" and {"lag_y", "lag_x"} <= set(dims))
    if is_sac:
        sac = np.asarray(x, dtype=np.float64).squeeze()
        if sac.ndim != 2 or sac.shape[0] % 2 == 0 or sac.shape[1] % 2 == 0:
            raise ValueError(
                f"an autocorrelogram must be 2-D with odd sides (2n - 1); got shape {sac.shape}"
            )
        sac = np.nan_to_num(sac)[None]
        if not np.any(sac):
            return float("nan"), float("nan")
    else:
        maps = _as_maps(x, "rate_map")[0]
        if len(maps) != 1:
            raise ValueError(f"gridness scores one map; got {len(maps)} (use compute_grid_scores)")
        if not _informative(maps)[0]:
            return float("nan"), float("nan")
        sac = _autocorr(maps)
    s60, s90, _, _ = _sac_scores(sac, inner, outer)
    return float(s60[0]), float(s90[0])


def _spacing_orientation(sac: np.ndarray, dy: float, dx: float) -> tuple[float, float]:
    """Median distance and 6-fold mean angle of the six SAC peaks nearest the centre."""
    h, w = sac.shape
    peak = (sac == ndimage.maximum_filter(sac, size=3, mode="nearest")) & (sac > 0)
    peak[[0, -1], :] = peak[:, [0, -1]] = False
    peak[(h - 1) // 2, (w - 1) // 2] = False
    iy, ix = np.nonzero(peak)
    if len(iy) < 6:
        return float("nan"), float("nan")

    def vertex(lo: np.ndarray, mid: np.ndarray, hi: np.ndarray) -> np.ndarray:
        curv = lo - 2 * mid + hi
        out = np.zeros_like(mid)
        np.divide(lo - hi, 2 * curv, out=out, where=curv < 0)
        return np.clip(out, -0.5, 0.5)

    sy = vertex(sac[iy - 1, ix], sac[iy, ix], sac[iy + 1, ix])
    sx = vertex(sac[iy, ix - 1], sac[iy, ix], sac[iy, ix + 1])
    py = (iy + sy - (h - 1) / 2) * dy
    px = (ix + sx - (w - 1) / 2) * dx
    dist = np.hypot(px, py)
    near = np.argsort(dist, kind="stable")[:6]
    theta = np.arctan2(py[near], px[near])
    orientation = np.mod(np.angle(np.exp(6j * theta).sum()) / 6, np.pi / 3)
    return float(np.median(dist[near])), float(orientation)


def compute_grid_scores(
    rate_maps: MapsLike,
    *,
    inner_radius: float = INNER_RADIUS,
    outer_radii: Sequence[float] | None = None,
    field_threshold: float = 0.3,
    min_field_area: float = 0.02,
) -> xr.Dataset:
    """Gridness, grid spacing and orientation, and border score of every unit's rate map.

    Parameters
    ----------
    rate_maps : xarray.Dataset, xarray.DataArray or numpy.ndarray
        From :func:`compute_rate_maps` (or ``[units, y, x]``: then spacing is in bins).
    inner_radius, outer_radii : float, sequence of float
        Gridness annuli, as in :func:`gridness`.
    field_threshold, min_field_area : float
        Border-score fields, as in :func:`border_score`.

    Returns
    -------
    xarray.Dataset
        Over ``unit``: ``score60``, ``score90`` (NaN for a flat or empty map); ``annulus60``,
        ``annulus90`` (the outer radius of the best annulus, as a fraction of the map's bins
        per side); ``spacing`` (median distance of the six autocorrelogram peaks nearest the
        centre, in m) and ``orientation`` (their angle mod 60°, in rad, in [0, π/3)), NaN
        when fewer than six positive peaks; ``border_score`` (NaN for circular arenas).

    Examples
    --------
    >>> import numpy as np
    >>> from analyses import compute_rate_maps
    >>> pos = np.random.default_rng(0).uniform(-1.1, 1.1, (50000, 2))  # metres
    >>> wave = lambda a, k: np.cos(k * (pos[:, 0] * np.cos(a) + pos[:, 1] * np.sin(a)))
    >>> k = 4 * np.pi / (np.sqrt(3) * 0.6)  # hexagonal: spacing 0.6 m, lattice axis at 0.2 rad
    >>> hexagonal = sum(wave(0.2 + np.pi / 6 + i * np.pi / 3, k) for i in range(3))
    >>> square = wave(0.0, 8.0) + wave(np.pi / 2, 8.0)  # square: spacing 2π/8 m
    >>> maps = compute_rate_maps(np.stack([hexagonal, square], 1), pos, n_bins=30)
    >>> scores = compute_grid_scores(maps)
    >>> scores.score60.values.round(2), scores.score90.values.round(2)
    (array([ 1.48, -0.31]), array([0.25, 1.5 ]))
    >>> scores.spacing.values.round(2), float(scores.orientation[0].round(2))
    (array([0.6 , 0.79]), 0.2)
    """
    inner, outer = _check_annuli(inner_radius, outer_radii)
    threshold = _check_number("field_threshold", field_threshold, low=0)
    min_area = _check_number("min_field_area", min_field_area, low=0)
    arr, coords, size, arena = _as_maps(rate_maps)
    u = len(arr)
    good = _informative(arr)
    s60, s90, a60, a90, spacing, orientation = np.full((6, u), np.nan)
    dy, dx = size if size is not None else (1.0, 1.0)
    index = np.flatnonzero(good)
    for start in range(0, len(index), 8 * _CHUNK):  # bounds the FFT work arrays
        idx = index[start : start + 8 * _CHUNK]
        sac = _autocorr(arr[idx])
        s60[idx], s90[idx], i60, i90 = _sac_scores(sac, inner, outer)
        a60[idx], a90[idx] = np.asarray(outer)[i60], np.asarray(outer)[i90]
        for k, i in enumerate(idx):
            spacing[i], orientation[i] = _spacing_orientation(sac[k], dy, dx)
    if arena == "circle":
        border = np.full(u, np.nan)
    else:
        bin_area = abs(dy * dx) if size is not None else None
        border = _border_scores(arr, threshold, min_area, bin_area)
    length = {"units": "m" if size is not None else "bins"}
    return xr.Dataset(
        {
            "score60": ("unit", s60),
            "score90": ("unit", s90),
            "annulus60": ("unit", a60, {"units": "fraction of the map's bins per side"}),
            "annulus90": ("unit", a90, {"units": "fraction of the map's bins per side"}),
            "spacing": ("unit", spacing, length),
            "orientation": ("unit", orientation, {"units": "rad"}),
            "border_score": ("unit", border),
        },
        coords=coords,
        attrs={
            "inner_radius": inner,
            "outer_radii": json.dumps(list(outer)),
            "angles": json.dumps(list(ANGLES)),
            "field_threshold": threshold,
            "min_field_area": min_area,
        },
    )


def shuffle_threshold(
    rate_maps: MapsLike,
    *,
    n_shuffles: int = 100,
    percentile: float = 95.0,
    smoothing_sigma: float = 1.0,
    seed: int = 0,
    inner_radius: float = INNER_RADIUS,
    outer_radii: Sequence[float] | None = None,
) -> float:
    """The ``percentile`` of ``score60`` over spatially shuffled rate maps (a null threshold).

    Each of ``n_shuffles`` draws takes a unit's map (units drawn at random, without
    replacement while there are enough), permutes its visited bins at random, and smooths it
    with a Gaussian of ``smoothing_sigma`` bins (NaN-aware), so the null keeps the map's rate
    distribution and a spatial smoothness, but no spatial structure. Compare
    ``(scores.score60 > threshold).mean()`` for the fraction of grid-like units.

    Parameters
    ----------
    rate_maps : xarray.Dataset, xarray.DataArray or numpy.ndarray
    n_shuffles : int, default 100
    percentile : float, default 95.0
    smoothing_sigma : float, default 1.0
        Smoothing of the shuffled maps, in bins (0: none).
    seed : int, default 0
        Same seed, same threshold.
    inner_radius, outer_radii : float, sequence of float
        As in :func:`gridness`.

    Examples
    --------
    >>> import numpy as np
    >>> maps = np.random.default_rng(1).normal(size=(5, 20, 20))
    >>> t = shuffle_threshold(maps, n_shuffles=20, seed=0)
    >>> round(t, 2), t == shuffle_threshold(maps, n_shuffles=20, seed=0)
    (0.69, True)
    """
    n = int(_check_number("n_shuffles", n_shuffles, low=1, integer=True))
    q = _check_number("percentile", percentile, low=0)
    if q > 100:
        raise ValueError(f"percentile must be in [0, 100]; got {percentile!r}")
    sigma = _check_number("smoothing_sigma", smoothing_sigma, low=0)
    inner, outer = _check_annuli(inner_radius, outer_radii)
    arr = _as_maps(rate_maps)[0]
    arr = arr[_informative(arr)]
    if not len(arr):
        raise ValueError("rate_maps has no map with two distinct finite values to shuffle")
    rng = np.random.default_rng(seed)
    units = rng.choice(len(arr), n, replace=n > len(arr))
    shuffled = np.full((n, *arr.shape[1:]), np.nan)
    for k, i in enumerate(units):
        finite = np.isfinite(arr[i])
        shuffled[k][finite] = rng.permutation(arr[i][finite])
    if sigma > 0:
        mask = np.isfinite(shuffled)
        num = ndimage.gaussian_filter(
            np.where(mask, shuffled, 0.0), (0, sigma, sigma), mode="constant"
        )
        den = ndimage.gaussian_filter(mask.astype(np.float64), (0, sigma, sigma), mode="constant")
        smooth = np.full(shuffled.shape, np.nan)
        np.divide(num, den, out=smooth, where=mask & (den > 0))
        shuffled = smooth
    keep = _informative(shuffled)
    scores = _sac_scores(_autocorr(shuffled[keep]), inner, outer)[0]
    return float(np.percentile(scores, q))
