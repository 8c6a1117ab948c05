"""Population dynamics: PCA of trajectories and the participation ratio."""

from __future__ import annotations

import numpy as np
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


def compute_pca(
    ds: xr.Dataset,
    *,
    variable: str = "state",
    n_components: int = 10,
    valid_only: bool = True,
) -> xr.Dataset:
    """PCA of a trajectory variable over units, pooling trials and time steps.

    Parameters
    ----------
    ds : xarray.Dataset
        Trajectories with dims ``trial, time, unit`` (as from ``neurosim.simulate``).
    variable : str, default "state"
    n_components : int, default 10
    valid_only : bool, default True
        Fit on real steps only (``ds.valid``), not padding.

    Returns
    -------
    xarray.Dataset
        ``components (component, unit)``, ``explained_variance (component)``,
        ``explained_variance_ratio (component)``, ``mean (unit)``,
        ``projection (trial, time, component)`` (NaN on padding when ``valid_only``),
        and attr ``participation_ratio``.

    Examples
    --------
    >>> import paradigms, neurosim, analyses
    >>> task = paradigms.make("neurogym/PerceptualDecisionMaking-v0")
    >>> net = neurosim.models.RateRNN(task.n_inputs, 16, task.n_outputs, dt=task.dt)
    >>> pca = analyses.compute_pca(neurosim.simulate(net, task, 20, seed=0), n_components=3)
    >>> pca.projection.dims
    ('trial', 'time', 'component')
    """
    if variable not in ds:
        raise KeyError(f"variable {variable!r} not in dataset; it has {sorted(ds.data_vars)}")
    da = ds[variable].transpose("trial", "time", "unit")
    x = np.asarray(da.values, dtype=np.float64)
    b, t, n = x.shape
    k = int(n_components)
    if not 1 <= k <= n:
        raise ValueError(
            f"n_components must be in [1, {n}] (the number of units), got {n_components!r}"
        )
    keep = (
        np.asarray(ds["valid"].values, dtype=bool)
        if valid_only and "valid" in ds
        else np.ones((b, t), bool)
    )
    samples = x[keep]
    mean = samples.mean(0)
    centred = samples - mean
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    var = s**2 / max(len(samples) - 1, 1)
    proj = (x - mean) @ vt[:k].T
    proj[~keep] = np.nan
    comp = np.arange(k)
    return xr.Dataset(
        {
            "components": (("component", "unit"), vt[:k]),
            "explained_variance": ("component", var[:k]),
            "explained_variance_ratio": ("component", var[:k] / var.sum()),
            "mean": ("unit", mean),
            "projection": (("trial", "time", "component"), proj),
        },
        coords={
            "component": comp,
            **{c: ds.coords[c] for c in ("trial", "time", "unit") if c in ds.coords},
        },
        attrs={"variable": variable, "participation_ratio": float(var.sum() ** 2 / np.sum(var**2))},
    )
