"""Adjusted Rand index, batched: agreement of two labellings (e.g. object masks and clusters).

Equal to scikit-learn's ``adjusted_rand_score`` on each labelling; many labellings (images) are
scored at once from contingency tables built with ``bincount``. ``ari_fg`` and ``ari_bg`` are
the object-discovery scores of Löwe et al. (2022): objects only, or all pixels, the pixels where
objects overlap (label −1) left out of both.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

Array = np.ndarray | xr.DataArray
_MAX_CELLS = 1 << 24  # contingency cells counted at once


# --------------------------------------------------------------------------- helpers
def _axes(axis: int | Sequence[int] | None, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int | np.integer) else tuple(axis)
    out = []
    for a in axes:
        if not isinstance(a, int | np.integer) or not -ndim <= a < ndim:
            raise ValueError(f"axis = {axis!r} is not allowed for arrays of {ndim} dims")
        out.append(int(a) % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"axis = {axis!r} repeats an axis")
    return tuple(sorted(out))


def _groups(x: np.ndarray, axes: tuple[int, ...]) -> tuple[np.ndarray, tuple[int, ...]]:
    """``x`` as ``[G, N]`` with the pooled ``axes`` last, and the shape of the kept axes."""
    keep = [a for a in range(x.ndim) if a not in axes]
    moved = np.transpose(x, keep + list(axes))
    lead = tuple(x.shape[a] for a in keep)
    return moved.reshape(int(np.prod(lead, dtype=np.int64)), -1), lead


def _dims(da: xr.DataArray, dim: str | Sequence[str] | None, default: int | None) -> list[str]:
    if dim is None:
        dims = list(da.dims) if default is None else list(da.dims[-default:])
    else:
        dims = [dim] if isinstance(dim, str) else list(dim)
    missing = [d for d in dims if d not in da.dims]
    if missing:
        raise ValueError(f"dim = {dim!r}: {missing} not among the dims {da.dims}")
    return dims


def _like(x: object, ref: xr.DataArray) -> xr.DataArray:
    """``x`` as a DataArray: itself, or an array of ``ref``'s shape given ``ref``'s dims."""
    if isinstance(x, xr.DataArray):
        return x
    arr = _as_numpy(x, "array")
    if arr.ndim == 0:
        return xr.DataArray(arr)
    return xr.DataArray(arr, dims=ref.dims[ref.ndim - arr.ndim :])


def _first_da(*xs: object) -> xr.DataArray:
    return next(x for x in xs if isinstance(x, xr.DataArray))


def _as_numpy(x: object, name: str) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().cpu().numpy()  # type: ignore[attr-defined]
    arr = np.asarray(x)
    if arr.dtype == object:
        raise TypeError(f"{name} must be a numeric array; got dtype object")
    return arr


# --------------------------------------------------------------------------- ARI
def _ari_groups(t: np.ndarray, p: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """ARI of each row of ``t``, ``p`` ``[G, N]`` over the pixels where ``keep``."""
    g, n = t.shape
    _, ti = np.unique(t, return_inverse=True)
    _, pi = np.unique(p, return_inverse=True)
    ti, pi = ti.reshape(g, n), pi.reshape(g, n)
    ut, up = int(ti.max(initial=0)) + 1, int(pi.max(initial=0)) + 1
    out = np.full(g, np.nan)
    step = max(1, _MAX_CELLS // (ut * up))
    for s in range(0, g, step):
        rows = slice(s, s + step)
        m = keep[rows]
        gid = np.broadcast_to(np.arange(m.shape[0])[:, None], m.shape)
        code = (gid[m] * ut + ti[rows][m]) * up + pi[rows][m]
        c = np.bincount(code, minlength=m.shape[0] * ut * up).reshape(-1, ut, up)
        total = c.sum((1, 2))
        sum_sq = np.square(c).sum((1, 2))
        fp = np.square(c.sum(1)).sum(1) - sum_sq  # pairs split by truth, joined by prediction
        fn = np.square(c.sum(2)).sum(1) - sum_sq
        tp = sum_sq - total
        tn = total * total - fp - fn - sum_sq
        tp, tn, fp, fn = (x.astype(np.float64) for x in (tp, tn, fp, fn))
        den = (tp + fn) * (fn + tn) + (tp + fp) * (fp + tn)
        perfect = (fn == 0) & (fp == 0)
        ari = np.divide(2.0 * (tp * tn - fn * fp), den, out=np.ones_like(den), where=~perfect)
        out[rows] = np.where(total > 0, ari, np.nan)
    return out


def _ignore_mask(t: np.ndarray, ignore: object) -> np.ndarray:
    if ignore is None:
        return np.zeros(t.shape, bool)
    arr = np.asarray(ignore)
    if arr.dtype == bool:
        return np.broadcast_to(arr, t.shape)
    if arr.dtype.kind not in "iuf" or arr.ndim > 1:
        raise ValueError(
            f"ignore = {ignore!r} is not allowed; give a label value, a sequence of label "
            "values, or a boolean mask of the pixels to leave out"
        )
    return np.isin(t, arr)


def adjusted_rand_index(
    labels_true: Array,
    labels_pred: Array,
    *,
    ignore: int | Sequence[int] | np.ndarray | None = None,
    axis: int | Sequence[int] | None = None,
    dim: str | Sequence[str] | None = None,
) -> float | np.ndarray | xr.DataArray:
    """Adjusted Rand index (Hubert & Arabie 1985) between two labellings, batched.

    Equals scikit-learn's ``adjusted_rand_score`` on each labelling (its pair-counting form,
    including its convention that two labellings that agree on every pair score 1), computed
    for many labellings at once from contingency tables built with ``bincount``.

    Parameters
    ----------
    labels_true, labels_pred : array-like or xarray.DataArray
        Labellings of the same shape (they are broadcast); any integer or float labels.
    ignore : int, sequence of int, or bool array, optional
        Pixels to leave out: those whose *true* label is one of these values, or where a
        boolean mask (broadcast to the labels) is True.
    axis : int or sequence of int, optional
        NumPy inputs: the axes one labelling runs over (default: all, a single score);
        ``axis=(-2, -1)`` scores every image of a ``[B, T, H, W]`` stack.
    dim : str or sequence of str, optional
        xarray inputs: the dims one labelling runs over (default: all).

    Returns
    -------
    float, numpy.ndarray or xarray.DataArray
        The ARI of each labelling, over the axes not pooled (a ``DataArray`` named ``ari``
        for xarray inputs). A labelling with no pixels left is NaN (scikit-learn returns 1
        for empty input).

    Examples
    --------
    >>> adjusted_rand_index([0, 0, 1, 1], [5, 5, 3, 3])  # a renaming: perfect
    1.0
    >>> round(adjusted_rand_index([0, 0, 1, 2], [0, 0, 1, 1]), 4)
    0.5714
    >>> t = np.array([[0, 0, 1, 1], [0, 1, 0, 1]])
    >>> adjusted_rand_index(t, t[::-1], axis=1)
    array([-0.5, -0.5])
    """
    if isinstance(labels_true, xr.DataArray) or isinstance(labels_pred, xr.DataArray):
        ref = _first_da(labels_true, labels_pred)
        t_da, p_da = xr.broadcast(_like(labels_true, ref), _like(labels_pred, ref))
        dims = _dims(t_da, dim, None)
        kept = [d for d in t_da.dims if d not in dims]
        t_np = t_da.transpose(*kept, *dims).values
        p_np = p_da.transpose(*kept, *dims).values
        ign = ignore
        if isinstance(ignore, xr.DataArray):
            ign = xr.broadcast(ignore, t_da)[0].transpose(*kept, *dims).values
        score = adjusted_rand_index(t_np, p_np, ignore=ign, axis=tuple(range(len(kept), t_np.ndim)))
        coords = {k: v for k, v in t_da.coords.items() if set(v.dims) <= set(kept)}
        return xr.DataArray(score, dims=kept, coords=coords, name="ari")
    t = _as_numpy(labels_true, "labels_true")
    p = _as_numpy(labels_pred, "labels_pred")
    try:
        t, p = np.broadcast_arrays(t, p)
    except ValueError:
        raise ValueError(
            f"labels_true {t.shape} and labels_pred {p.shape} do not have the same shape"
        ) from None
    drop = _ignore_mask(t, ignore)
    axes = _axes(axis, t.ndim)
    tg, lead = _groups(t, axes)
    pg, _ = _groups(p, axes)
    keep, _ = _groups(~drop, axes)
    score = _ari_groups(tg, pg, keep).reshape(lead)
    return float(score) if score.ndim == 0 else score


def ari_fg(
    labels_true: Array,
    labels_pred: Array,
    *,
    axis: int | Sequence[int] = (-2, -1),
    dim: str | Sequence[str] | None = None,
) -> float | np.ndarray | xr.DataArray:
    """ARI over the objects' pixels only (true label > 0): background and overlaps (−1) left out.

    Per image by default (``axis=(-2, -1)``; for xarray, ``dim`` defaults to the last two dims).

    Examples
    --------
    >>> t = np.array([[0, 1, 1], [0, 2, 2]])
    >>> ari_fg(t, np.array([[7, 1, 1], [1, 0, 0]]))  # background ignored
    1.0
    """
    if isinstance(labels_true, xr.DataArray):
        return adjusted_rand_index(
            labels_true, labels_pred, ignore=labels_true <= 0, dim=_dims(labels_true, dim, 2)
        )
    t = _as_numpy(labels_true, "labels_true")
    return adjusted_rand_index(t, labels_pred, ignore=t <= 0, axis=axis)


def ari_bg(
    labels_true: Array,
    labels_pred: Array,
    *,
    axis: int | Sequence[int] = (-2, -1),
    dim: str | Sequence[str] | None = None,
) -> float | np.ndarray | xr.DataArray:
    """ARI over all pixels (true label >= 0, background included), overlaps (−1) left out.

    Examples
    --------
    >>> t = np.array([[0, 1, 1], [0, -1, 2]])
    >>> ari_bg(t, np.array([[3, 1, 1], [3, 1, 2]]))
    1.0
    """
    if isinstance(labels_true, xr.DataArray):
        return adjusted_rand_index(
            labels_true, labels_pred, ignore=labels_true < 0, dim=_dims(labels_true, dim, 2)
        )
    t = _as_numpy(labels_true, "labels_true")
    return adjusted_rand_index(t, labels_pred, ignore=t < 0, axis=axis)
