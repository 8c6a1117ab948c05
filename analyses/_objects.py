"""Object readout of synchrony-based models: adjusted Rand index, phase clustering, synchrony.

The protocol of Löwe et al. (2022): each output pixel of a complex-valued model becomes the
feature vector ``(m·cos φ, m·sin φ)`` over its channels, k-means groups the pixels of each
image into ``objects + 1`` clusters (pixels where objects overlap left out), and the clusters
are scored against the label map by the adjusted Rand index over the objects' pixels
(ARI-FG) or over all pixels (ARI-BG), overlaps (label −1) ignored in both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import xarray as xr

from ._ari import Array, _as_numpy, _axes, _dims, _first_da, _groups, _like
from ._ari import adjusted_rand_index as adjusted_rand_index
from ._ari import ari_bg as ari_bg
from ._ari import ari_fg as ari_fg

_IMAGES_AT_ONCE = 512  # images clustered together


# --------------------------------------------------------------------------- k-means
def _pick(p: np.ndarray, u: np.ndarray) -> np.ndarray:
    """One index per row of weights ``p [G, N]`` (``u [G]`` uniform); 0 where all are 0."""
    cum = np.cumsum(p, axis=1)
    idx = (cum <= (u * cum[:, -1])[:, None]).sum(1)
    return np.minimum(idx, p.shape[1] - 1)


def _sq_dist(xt: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``||x − c||²`` for features ``xt [D, G, N]`` and centres ``c [G, K, D]`` -> ``[G, K, N]``."""
    d = np.empty((xt.shape[1], c.shape[1], xt.shape[2]))
    for k in range(c.shape[1]):
        diff = xt - c[:, k].T[:, :, None]
        d[:, k] = np.einsum("dgn,dgn->gn", diff, diff)
    return d


def _lloyd(
    xt: np.ndarray, w: np.ndarray, active: np.ndarray, centres: np.ndarray, max_iter: int
) -> np.ndarray:
    """Lloyd iterations from ``centres [G, K, D]``; images that have converged drop out."""
    dd, g, n = xt.shape
    kmax = centres.shape[1]
    labels = np.full((g, n), -1)
    todo = np.arange(g)
    for _ in range(max_iter):
        xs, ws, cs = xt[:, todo], w[todo], centres[todo]
        d = np.where(active[todo, :, None], _sq_dist(xs, cs), np.inf)
        new = d.argmin(1)
        changed = (new != labels[todo]).any(1)
        labels[todo] = new
        todo, ws, cs, d, new = (a[changed] for a in (todo, ws, cs, d, new))
        xs = xs[:, changed]
        if not len(todo):
            break
        code = (np.arange(len(todo))[:, None] * kmax + new)[ws]
        size = len(todo) * kmax
        count = np.bincount(code, minlength=size).reshape(-1, kmax)
        sums = np.stack(
            [np.bincount(code, xs[j][ws], size).reshape(-1, kmax) for j in range(dd)], -1
        )
        cs = np.where((count > 0)[..., None], sums / np.maximum(count, 1)[..., None], cs)
        # an empty cluster restarts at the valid point farthest from its own centre
        own = np.where(ws, np.take_along_axis(d, new[:, None], 1)[:, 0], -1.0)
        act = active[todo]
        for j in range(kmax):
            empty = np.flatnonzero(act[:, j] & (count[:, j] == 0) & ws.any(1))
            if empty.size:
                far = own[empty].argmax(1)
                cs[empty, j] = xs[:, empty, far].T
                own[empty, far] = -1.0
        centres[todo] = cs
    return centres


def _kmeans(
    xt: np.ndarray, w: np.ndarray, k: np.ndarray, rng: np.random.Generator, max_iter: int
) -> tuple[np.ndarray, np.ndarray]:
    """One k-means++ initialised Lloyd run per image of ``xt [D, G, N]``: labels ``[G, N]``
    and inertia ``[G]``."""
    g = xt.shape[1]
    kmax = int(k.max())
    rows = np.arange(g)
    active = np.arange(kmax)[None] < k[:, None]  # [G, K]
    wf = w.astype(np.float64)
    centres = np.zeros((g, kmax, xt.shape[0]))
    centres[:, 0] = xt[:, rows, _pick(wf, rng.random(g))].T
    d2 = _sq_dist(xt, centres[:, :1])[:, 0]
    for j in range(1, kmax):
        p = d2 * wf
        p = np.where((p.sum(1) > 0)[:, None], p, wf)  # all points taken: any valid one
        centres[:, j] = xt[:, rows, _pick(p, rng.random(g))].T
        d2 = np.minimum(d2, _sq_dist(xt, centres[:, j : j + 1])[:, 0])
    centres = _lloyd(xt, w, active, centres, max_iter)
    d = np.where(active[:, :, None], _sq_dist(xt, centres), np.inf)
    labels = d.argmin(1)
    inertia = np.where(w, d.min(1), 0.0).sum(1)
    return labels, inertia


def cluster_phases(
    magnitude: Array,
    phase: Array,
    n_objects: int | np.ndarray,
    *,
    background: bool = True,
    exclude: np.ndarray | xr.DataArray | None = None,
    channel_axis: int | None = -3,
    channel_dim: str = "channel",
    magnitude_clip: float | None = None,
    n_init: int = 4,
    max_iter: int = 100,
    seed: int = 0,
) -> np.ndarray | xr.DataArray:
    """Group the pixels of each image by their phase: seeded k-means on ``(m cos φ, m sin φ)``.

    Each pixel's features are ``(m_c cos φ_c, m_c sin φ_c)`` over the output channels ``c``,
    so a pixel of small magnitude sits near the origin whatever its phase (the background).
    k-means (k-means++ initialisation, Lloyd iterations, the best of ``n_init`` runs by
    inertia) runs on every image at once.

    Parameters
    ----------
    magnitude, phase : array-like or xarray.DataArray
        ``[..., C, H, W]`` (channel axis ``channel_axis``; ``None``: ``[..., H, W]``, one
        channel). For xarray, the channel dim is ``channel_dim`` (if present) and the image
        is the last two other dims.
    n_objects : int or array of int
        Objects per image (an int, or one per image, shape ``[...]``).
    background : bool, default True
        Add one cluster for the background: ``k = n_objects + 1`` (as Löwe et al.).
    exclude : bool array ``[..., H, W]``, optional
        Pixels left out of the clustering (e.g. ``labels == -1``, the overlaps); labelled −1.
    magnitude_clip : float, optional
        Use ``min(m, clip) / clip`` as the weight instead of ``m`` (Löwe et al.'s phase mask
        threshold: pixels of small magnitude are pulled to the origin).
    n_init, max_iter, seed : int
        Restarts, Lloyd iterations per restart, seed (same seed, same clusters).

    Returns
    -------
    numpy.ndarray or xarray.DataArray
        ``int64 [..., H, W]`` cluster ids ``0 … k−1``, numbered in the order they first
        appear in the image (row by row), −1 where excluded; a ``DataArray`` named
        ``cluster`` for xarray inputs.

    Examples
    --------
    >>> phase = np.zeros((1, 1, 4, 4)); phase[..., 2:] = np.pi  # two halves in antiphase
    >>> cluster_phases(np.ones_like(phase), phase, 2, background=False)[0]
    array([[0, 0, 1, 1],
           [0, 0, 1, 1],
           [0, 0, 1, 1],
           [0, 0, 1, 1]])
    """
    if isinstance(magnitude, xr.DataArray):
        mag, ph = xr.broadcast(magnitude, _like(phase, magnitude))
        chan = [channel_dim] if channel_dim in mag.dims else []
        others = [d for d in mag.dims if d not in chan]
        lead, image = others[:-2], others[-2:]
        order = [*lead, *chan, *image]
        ex = exclude
        if isinstance(exclude, xr.DataArray):
            ex = exclude.transpose(*lead, *image).values
        nob = (
            n_objects.transpose(*lead).values if isinstance(n_objects, xr.DataArray) else n_objects
        )
        out = cluster_phases(
            mag.transpose(*order).values,
            ph.transpose(*order).values,
            nob,
            background=background,
            exclude=ex,
            channel_axis=len(lead) if chan else None,
            magnitude_clip=magnitude_clip,
            n_init=n_init,
            max_iter=max_iter,
            seed=seed,
        )
        coords = {k: v for k, v in mag.coords.items() if set(v.dims) <= set(others)}
        return xr.DataArray(out, dims=[*lead, *image], coords=coords, name="cluster")
    m = _as_numpy(magnitude, "magnitude").astype(np.float64)
    ph = _as_numpy(phase, "phase").astype(np.float64)
    m, ph = np.broadcast_arrays(m, ph)
    if channel_axis is None:
        m, ph = m[..., None], ph[..., None]
    else:
        m, ph = np.moveaxis(m, channel_axis, -1), np.moveaxis(ph, channel_axis, -1)
    if m.ndim < 3:
        raise ValueError(f"magnitude and phase need image axes [..., H, W]; got {m.shape}")
    *lead, h, w, c = m.shape
    if magnitude_clip is not None:
        if not magnitude_clip > 0:
            raise ValueError(f"magnitude_clip = {magnitude_clip!r} is not allowed; it must be > 0")
        m = np.clip(m, 0.0, magnitude_clip) / magnitude_clip
    m, ph = np.moveaxis(m, -1, 0), np.moveaxis(ph, -1, 0)  # [C, ..., H, W]
    feats = np.concatenate([m * np.cos(ph), m * np.sin(ph)]).reshape(2 * c, -1, h * w)
    g = feats.shape[1]
    k = np.broadcast_to(np.asarray(n_objects), tuple(lead)).reshape(g).astype(np.int64)
    k = k + int(bool(background))
    if (k < 1).any():
        raise ValueError(f"n_objects = {n_objects!r} leaves an image without clusters")
    valid = np.ones((g, h * w), bool)
    if exclude is not None:
        valid = ~np.broadcast_to(_as_numpy(exclude, "exclude").astype(bool), (*lead, h, w))
        valid = valid.reshape(g, h * w)
    for name, v in (("n_init", n_init), ("max_iter", max_iter)):
        if not isinstance(v, int | np.integer) or v < 1:
            raise ValueError(f"{name} = {v!r} is not allowed; it must be an integer >= 1")
    rng = np.random.default_rng(seed)
    best = np.zeros((g, h * w), np.int64)
    for s in range(0, g, _IMAGES_AT_ONCE):  # bounds memory: [chunk, K, H·W] distances
        sl = slice(s, s + _IMAGES_AT_ONCE)
        best_inertia = np.full(len(k[sl]), np.inf)
        for _ in range(n_init):
            labels, inertia = _kmeans(feats[:, sl], valid[sl], k[sl], rng, max_iter)
            better = inertia < best_inertia
            best[sl] = np.where(better[:, None], labels, best[sl])
            best_inertia = np.where(better, inertia, best_inertia)
    # canonical ids: clusters numbered in the order they first appear in the image
    hit = (best[..., None] == np.arange(int(k.max()))) & valid[..., None]  # [G, N, K]
    first = np.where(hit.any(1), hit.argmax(1), h * w)
    rank = np.argsort(np.argsort(first, axis=1, kind="stable"), axis=1)
    out = np.where(valid, np.take_along_axis(rank, best, 1), -1).astype(np.int64)
    return out.reshape(*lead, h, w)


# --------------------------------------------------------------------------- synchrony
class Synchrony(NamedTuple):
    """Phase synchrony from :func:`phase_synchrony` (NumPy inputs).

    Attributes
    ----------
    within : numpy.ndarray
        Mean over the objects present of their phase locking (1: every object in one phase).
    between : numpy.ndarray
        Phase locking of the objects' mean phases (1: all objects in the same phase; 0: spread
        evenly); NaN with fewer than two objects.
    per_object : numpy.ndarray
        ``[..., K]`` each object's ``|Σ m e^{iφ}| / Σ m`` (NaN if absent).
    object_phase : numpy.ndarray
        ``[..., K]`` each object's mean phase ``arg Σ m e^{iφ}`` (NaN if absent).
    """

    within: np.ndarray
    between: np.ndarray
    per_object: np.ndarray
    object_phase: np.ndarray


def _nanmean(x: np.ndarray, axis: int) -> np.ndarray:
    ok = ~np.isnan(x)
    n = ok.sum(axis)
    total = np.where(ok, x, 0.0).sum(axis)
    return np.divide(total, n, out=np.full(total.shape, np.nan), where=n > 0)


def phase_synchrony(
    phase: Array,
    magnitude: Array,
    labels: Array,
    *,
    n_objects: int | None = None,
    include_background: bool = False,
    axis: int | Sequence[int] | None = None,
    dim: str | Sequence[str] | None = None,
) -> Synchrony | xr.Dataset:
    """Within-object phase locking against between-object phase locking.

    For object ``k`` (the units or pixels labelled ``k``, over every channel), its locking
    is ``R_k = |Σ m e^{iφ}| / Σ m`` (magnitude-weighted ``|mean e^{iφ}|``) and its phase
    ``ψ_k = arg Σ m e^{iφ}``. ``within`` averages ``R_k`` over the objects present;
    ``between = |mean_k e^{iψ_k}|``. Binding by synchrony shows as ``within`` near 1 and
    ``between`` near 0.

    Parameters
    ----------
    phase, magnitude : array-like or xarray.DataArray
        Same shape (broadcast), e.g. ``[B, C, H, W]`` or ``[B, T, units]``.
    labels : array-like or xarray.DataArray
        Integer object labels broadcast against ``phase`` (e.g. ``labels[:, None]`` for
        ``[B, C, H, W]`` outputs); labels ``< 0`` are ignored, 0 is the background.
    n_objects : int, optional
        Objects ``1 … K`` reported (default: the largest label).
    include_background : bool, default False
        Treat label 0 as an object too (reported first).
    axis : int or sequence of int, optional
        NumPy inputs: the axes pooled (default: all but the first; all for 1-D input).
    dim : str or sequence of str, optional
        xarray inputs: the dims pooled (default: all but the first).

    Returns
    -------
    Synchrony or xarray.Dataset
        ``within``, ``between``, ``per_object`` and ``object_phase`` (dim ``object`` for xarray).

    Examples
    --------
    >>> labels = np.array([[1, 1, 2, 2]])
    >>> phase = np.array([[0.3, 0.3, 0.3 + np.pi, 0.3 + np.pi]])
    >>> s = phase_synchrony(phase, np.ones_like(phase), labels)
    >>> float(s.within[0]), round(float(s.between[0]), 6)
    (1.0, 0.0)
    """
    if any(isinstance(x, xr.DataArray) for x in (phase, magnitude, labels)):
        ref = _first_da(phase, magnitude, labels)
        ph, m, lab = xr.broadcast(_like(phase, ref), _like(magnitude, ref), _like(labels, ref))
        dims = list(ph.dims[1:]) if dim is None else _dims(ph, dim, None)
        kept = [d for d in ph.dims if d not in dims]
        order = [*kept, *dims]
        res = phase_synchrony(
            ph.transpose(*order).values,
            m.transpose(*order).values,
            lab.transpose(*order).values,
            n_objects=n_objects,
            include_background=include_background,
            axis=tuple(range(len(kept), len(order))),
        )
        first = 0 if include_background else 1
        objects = np.arange(first, first + res.per_object.shape[-1])
        coords = {k: v for k, v in ph.coords.items() if set(v.dims) <= set(kept)}
        return xr.Dataset(
            {
                "within": (kept, res.within),
                "between": (kept, res.between),
                "per_object": ([*kept, "object"], res.per_object),
                "object_phase": ([*kept, "object"], res.object_phase),
            },
            coords={**coords, "object": objects},
        )
    ph = _as_numpy(phase, "phase").astype(np.float64)
    m = _as_numpy(magnitude, "magnitude").astype(np.float64)
    lab = _as_numpy(labels, "labels")
    if lab.dtype.kind not in "iu":
        raise ValueError(f"labels must be integers; got dtype {lab.dtype}")
    try:
        ph, m, lab = np.broadcast_arrays(ph, m, lab)
    except ValueError:
        raise ValueError(
            f"phase {ph.shape}, magnitude {m.shape} and labels {lab.shape} do not broadcast; "
            "give labels[:, None] for [B, C, H, W] outputs"
        ) from None
    axes = _axes(axis, ph.ndim) if axis is not None else tuple(range(min(1, ph.ndim - 1), ph.ndim))
    phg, lead = _groups(ph, axes)
    mg, _ = _groups(m, axes)
    lg, _ = _groups(lab, axes)
    first = 0 if include_background else 1
    k = int(lg.max(initial=0)) if n_objects is None else int(n_objects)
    n_obj = max(k - first + 1, 0)
    use = (lg >= first) & (lg <= k)
    gid = np.broadcast_to(np.arange(lg.shape[0])[:, None], lg.shape)
    code = gid[use] * n_obj + (lg[use] - first)
    size = lg.shape[0] * n_obj
    w = mg[use]
    re = np.bincount(code, weights=w * np.cos(phg[use]), minlength=size).reshape(-1, n_obj)
    im = np.bincount(code, weights=w * np.sin(phg[use]), minlength=size).reshape(-1, n_obj)
    total = np.bincount(code, weights=w, minlength=size).reshape(-1, n_obj)
    length = np.hypot(re, im)
    present = total > 0
    per_object = np.divide(length, total, out=np.full(total.shape, np.nan), where=present)
    object_phase = np.where(present, np.arctan2(im, re), np.nan)
    within = _nanmean(per_object, 1)
    unit = np.divide(re + 1j * im, length, out=np.zeros(re.shape, complex), where=length > 0)
    n_present = (length > 0).sum(1)
    between = np.divide(
        np.abs(unit.sum(1)), n_present, out=np.full(len(unit), np.nan), where=n_present > 1
    )
    return Synchrony(
        within.reshape(lead),
        between.reshape(lead),
        per_object.reshape(*lead, n_obj),
        object_phase.reshape(*lead, n_obj),
    )


# --------------------------------------------------------------------------- protocol
def compute_object_discovery(
    magnitude: np.ndarray,
    phase: np.ndarray,
    labels: np.ndarray,
    *,
    channel_axis: int | None = -3,
    magnitude_clip: float | None = None,
    n_init: int = 4,
    seed: int = 0,
) -> xr.Dataset:
    """Löwe et al.'s object-discovery evaluation of model outputs against label maps.

    Per image: ``k = max label + 1`` clusters (objects and background) from
    :func:`cluster_phases`, the overlap pixels (label −1) left out of the clustering, then
    :func:`ari_fg` and :func:`ari_bg`.

    Parameters
    ----------
    magnitude, phase : numpy.ndarray
        ``[B, C, H, W]`` model outputs (``channel_axis``; ``None`` for ``[B, H, W]``).
    labels : numpy.ndarray
        ``int [B, H, W]`` label maps (0 background, ``1 … K`` objects, −1 overlap).
    channel_axis, magnitude_clip, n_init, seed
        As in :func:`cluster_phases`.

    Returns
    -------
    xarray.Dataset
        ``ari_fg``, ``ari_bg`` over ``image`` and ``cluster`` over ``image, y, x``; attrs hold
        the means ``ari_fg_mean``, ``ari_bg_mean`` (over images where defined).

    Examples
    --------
    >>> labels = np.zeros((2, 8, 8), int); labels[:, :4, :4] = 1; labels[:, 4:, 4:] = 2
    >>> phase = np.where(labels == 2, 2.0, 0.0)[:, None]; mag = (labels > 0)[:, None] * 1.0
    >>> res = compute_object_discovery(mag, phase, labels)
    >>> res.ari_fg.values.tolist(), res.ari_bg.values.tolist()
    ([1.0, 1.0], [1.0, 1.0])
    """
    lab = _as_numpy(labels, "labels")
    if lab.ndim != 3 or lab.dtype.kind not in "iu":
        raise ValueError(f"labels must be int [B, H, W]; got {lab.dtype} {lab.shape}")
    n_obj = lab.reshape(len(lab), -1).max(1, initial=0)
    clusters = cluster_phases(
        magnitude,
        phase,
        np.maximum(n_obj, 0),
        exclude=lab < 0,
        channel_axis=channel_axis,
        magnitude_clip=magnitude_clip,
        n_init=n_init,
        seed=seed,
    )
    fg = ari_fg(lab, clusters)
    bg = ari_bg(lab, clusters)
    return xr.Dataset(
        {
            "ari_fg": ("image", fg),
            "ari_bg": ("image", bg),
            "cluster": (("image", "y", "x"), clusters),
        },
        coords={"image": np.arange(len(lab))},
        attrs={
            "ari_fg_mean": float(_nanmean(fg[None], 1)[0]),
            "ari_bg_mean": float(_nanmean(bg[None], 1)[0]),
        },
    )
