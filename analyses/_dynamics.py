"""Population dynamics: PCA of trajectories (pooled or per condition) and the participation ratio."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr


def participation_ratio(x: np.ndarray | xr.DataArray) -> float:
    """Participation ratio (Σλ)² / Σλ² of the covariance eigenvalues of ``x [samples, units]``.

    It is 1 when one dimension carries all variance and ``N`` when all ``N`` units
    carry equal, independent variance.

    Examples
    --------
    >>> import numpy as np
    >>> round(participation_ratio(np.random.default_rng(0).normal(size=(20000, 4))), 1)
    4.0
    """
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"x must be 2-D [samples, units], got shape {a.shape}")
    lam = np.clip(np.linalg.eigvalsh(np.cov(a, rowvar=False)), 0, None)
    return float(lam.sum() ** 2 / np.sum(lam**2))


def _plain(column: pd.Series) -> np.ndarray:
    values = column.to_numpy()
    return values.astype(str) if values.dtype == object else values


def _conditions(
    ds: xr.Dataset, by: str | Sequence[str]
) -> tuple[list[str], pd.DataFrame, np.ndarray]:
    """The ``by`` names, one row per condition (sorted), and each trial's condition index."""
    names = [by] if isinstance(by, str) else list(by)
    available = sorted(
        str(c) for c, v in ds.coords.items() if v.dims == ("trial",) and c != "trial"
    )
    if not names or not all(isinstance(b, str) for b in names):
        raise ValueError(f"by must be a trial coordinate name or a list of them; got {by!r}")
    for name in names:
        if name not in available:
            raise ValueError(
                f"by={by!r}: {name!r} is not a trial coordinate; available: {available}"
            )
    trials = pd.DataFrame({name: ds.coords[name].values for name in names})
    for name in names:
        if trials[name].dtype == object:
            trials[name] = trials[name].astype(str)
    codes = trials.groupby(names, sort=True, dropna=False).ngroup().to_numpy()
    table = trials.groupby(names, sort=True, dropna=False).size().reset_index(name="n_trials")
    return names, table, codes


def compute_pca(
    ds: xr.Dataset,
    *,
    variable: str = "state",
    n_components: int = 10,
    valid_only: bool = True,
    by: str | Sequence[str] | None = None,
) -> xr.Dataset:
    """PCA of a trajectory variable over units: pooled over trials and time, or per condition.

    With ``by=None`` the components are fitted on every (valid) step of every trial. With
    ``by`` (trial coordinate name(s), e.g. ``"coh"``) they are fitted on condition-averaged
    trajectories: trials sharing the values of ``by`` are averaged step by step, over the
    trials valid at that step (conditions of different lengths are averaged where valid), and
    every (condition, time) with at least one valid trial is a sample.

    Parameters
    ----------
    ds : xarray.Dataset
        Trajectories with dims ``trial, time, unit`` (as from ``neurosim.simulate``).
    variable : str, default "state"
    n_components : int, default 10
    valid_only : bool, default True
        Fit on real steps only (``ds.valid``), not padding.
    by : str or list of str, optional
        Trial coordinates that define the conditions.

    Returns
    -------
    xarray.Dataset
        ``components (component, unit)``, ``explained_variance (component)``,
        ``explained_variance_ratio (component)`` (of the fitted samples: steps, or
        condition-averaged steps), ``mean (unit)``, ``projection (trial, time, component)``
        (NaN on padding when ``valid_only``), and attr ``participation_ratio``. With ``by``
        also ``condition_average (condition, time, unit)``, ``condition_projection
        (condition, time, component)`` (NaN where no trial of the condition is valid),
        ``n_trials (condition)`` and, for each name, a coordinate ``condition_<name>`` on
        ``condition``; the ``condition`` coordinate holds the values for a single name and
        0, 1, … for several. Attr ``by`` lists the names (JSON).

    Examples
    --------
    >>> import paradigms, neurosim, analyses
    >>> task = paradigms.make("neurogym/PerceptualDecisionMaking-v0")
    >>> net = neurosim.models.RateRNN(task.n_inputs, 16, task.n_outputs, dt=task.dt)
    >>> pca = analyses.compute_pca(neurosim.simulate(net, task, 20, seed=0), n_components=3)
    >>> pca.projection.dims
    ('trial', 'time', 'component')
    >>> ds = neurosim.simulate(net, task, 20, seed=0)
    >>> compute_pca(ds, n_components=3, by="coh").condition_projection.dims
    ('condition', 'time', 'component')
    """
    if variable not in ds:
        raise KeyError(f"variable {variable!r} not in dataset; it has {sorted(ds.data_vars)}")
    conditions = None if by is None else _conditions(ds, by)
    da = ds[variable].transpose("trial", "time", "unit")
    x = np.asarray(da.values, dtype=np.float64)
    b, t, n = x.shape
    k = int(n_components)
    if not 1 <= k <= n:
        raise ValueError(
            f"n_components must be in [1, {n}] (the number of units), got {n_components!r}"
        )
    keep = (
        np.asarray(ds["valid"].transpose("trial", "time").values, dtype=bool)
        if valid_only and "valid" in ds
        else np.ones((b, t), bool)
    )
    extra: dict[str, tuple] = {}
    coords: dict[str, object] = {}
    attrs: dict[str, object] = {"variable": variable}
    if conditions is None:
        samples = x[keep]
    else:
        names, table, codes = conditions
        c = len(table)
        onehot = np.zeros((c, b))
        onehot[codes, np.arange(b)] = 1.0
        counts = onehot @ keep.astype(np.float64)  # [C, T] valid trials per condition and step
        xz = np.where(keep[..., None], x, 0.0).reshape(b, t * n)
        sums = (onehot @ xz).reshape(c, t, n)
        has = counts > 0
        avg = np.full((c, t, n), np.nan)
        avg[has] = sums[has] / counts[has][:, None]
        samples = avg[has]
        values = {name: _plain(table[name]) for name in names}
        coords["condition"] = values[names[0]] if len(names) == 1 else np.arange(c)
        for name in names:
            coords[f"condition_{name}"] = ("condition", values[name])
        extra["condition_average"] = (("condition", "time", "unit"), avg)
        extra["n_trials"] = ("condition", table["n_trials"].to_numpy(np.int64))
        attrs["by"] = json.dumps(names)
    if len(samples) < 2:
        raise ValueError(f"PCA needs at least 2 samples (valid steps); got {len(samples)}")
    mean = samples.mean(0)
    centred = samples - mean
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    if len(s) < k:
        raise ValueError(
            f"n_components ({k}) exceeds the number of samples the PCA is fitted on ({len(s)})"
        )
    var = s**2 / max(len(samples) - 1, 1)
    proj = (x - mean) @ vt[:k].T
    proj[~keep] = np.nan
    if conditions is not None:
        cproj = np.full((avg.shape[0], t, k), np.nan)
        cproj[has] = (avg[has] - mean) @ vt[:k].T
        extra["condition_projection"] = (("condition", "time", "component"), cproj)
    attrs["participation_ratio"] = float(var.sum() ** 2 / np.sum(var**2))
    return xr.Dataset(
        {
            "components": (("component", "unit"), vt[:k]),
            "explained_variance": ("component", var[:k]),
            "explained_variance_ratio": ("component", var[:k] / var.sum()),
            "mean": ("unit", mean),
            "projection": (("trial", "time", "component"), proj),
            **extra,
        },
        coords={
            "component": np.arange(k),
            **{c_: ds.coords[c_] for c_ in ("trial", "time", "unit") if c_ in ds.coords},
            **coords,
        },
        attrs=attrs,
    )
