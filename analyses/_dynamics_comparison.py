"""Do two models have the same dynamics? Fixed points (number, stability) and Lyapunov spectra."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import xarray as xr

from ._fixed_points import compute_fixed_points
from ._lyapunov import compute_lyapunov_spectrum

_STABILITY = ("stable", "saddle", "unstable", "marginal")


def compute_dynamics_comparison(
    models: Mapping[str, torch.nn.Module],
    initial_states: Any,
    *,
    fixed_point_input: Any = None,
    lyapunov_inputs: Any = None,
    n_exponents: int = 3,
    n_steps: int = 500,
    warmup: int = 100,
    fixed_point_kwargs: Mapping[str, Any] | None = None,
    seed: int = 0,
    device: str = "auto",
    quiet: bool = True,
) -> xr.Dataset:
    """Fixed points and top Lyapunov exponents of several models, side by side.

    Meant for a fitted model against the network that generated its data (a teacher), or
    two fits against each other: the models must share a state space of the same size
    (a data-constrained fit has one unit per recorded neuron).

    Parameters
    ----------
    models : mapping of str to model
        Named models, each with ``step(h, x)`` and ``dt``.
    initial_states : array_like
        ``[B, N]`` starting states shared by every model: fixed-point searches start here
        and the Lyapunov spectra run from here.
    fixed_point_input : array_like, optional
        Constant input ``[I]`` of the fixed-point search (``None``: zero input of the
        model's input size).
    lyapunov_inputs : array_like, optional
        ``[B, T, I]`` or ``[T, I]`` inputs (``T >= warmup + n_steps``) of the spectra;
        constant ``fixed_point_input`` by default.
    n_exponents : int, default 3
    n_steps, warmup : int
        Steps measured and discarded per trajectory.
    fixed_point_kwargs : mapping, optional
        Passed on to :func:`compute_fixed_points`.
    seed : int, default 0
    device : str, default "auto"
    quiet : bool, default True

    Returns
    -------
    xarray.Dataset
        Dims ``model`` and ``exponent``: ``n_fixed_points``, ``n_<stability>`` for
        stable, saddle, unstable, marginal (fixed points with ``kind == "fixed"``),
        ``lyapunov_mean (model, exponent)`` and ``lyapunov_sem`` (per ms, SEM over the
        ``B`` trajectories); attrs ``fixed_points`` (JSON list per model of each point's
        stability and largest |λ|).

    Examples
    --------
    >>> import neurosim
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> net = neurosim.models.RateRNN(1, 6, 1, activation="tanh", tau=100.0, dt=20.0)
    >>> h0 = np.random.default_rng(0).normal(size=(8, 6))
    >>> cmp = compute_dynamics_comparison({"a": net, "b": net}, h0, n_steps=50, warmup=10,
    ...                                   device="cpu")
    >>> cmp.n_fixed_points.values.tolist(), cmp.n_stable.values.tolist()
    ([1, 1], [1, 1])
    """
    if not models:
        raise ValueError("models must name at least one model")
    h0 = np.asarray(initial_states, dtype=np.float64)
    sizes = {name: int(m.n_units) for name, m in models.items()}
    if h0.ndim != 2 or any(n != h0.shape[1] for n in sizes.values()):
        raise ValueError(
            f"initial_states must be [B, N] with N equal to every model's units {sizes}; "
            f"got shape {h0.shape}"
        )
    names = list(models)
    counts = {k: [] for k in ("n_fixed_points", *(f"n_{s}" for s in _STABILITY))}
    means, sems, points = [], [], {}
    for name in names:
        model = models[name]
        x = np.zeros(model.n_inputs) if fixed_point_input is None else fixed_point_input
        x = np.asarray(x, dtype=np.float64)
        fps = compute_fixed_points(
            model.step, h0, x, device=device, seed=seed, quiet=quiet,
            **dict(fixed_point_kwargs or {}),
        )  # fmt: skip
        fixed = fps.where(fps["kind"] == "fixed", drop=True) if fps.sizes["fixed_point"] else fps
        stab = fixed["stability"].values.astype(str) if fixed.sizes["fixed_point"] else []
        counts["n_fixed_points"].append(len(stab))
        for s in _STABILITY:
            counts[f"n_{s}"].append(int(np.sum(np.asarray(stab) == s)))
        lead = fixed["eigenvalue_abs"].isel(eigen=0).values if len(stab) else []
        points[name] = [
            {"stability": s, "max_abs_eigenvalue": float(v)}
            for s, v in zip(stab, lead, strict=True)
        ]
        total = warmup + n_steps
        xs = lyapunov_inputs
        if xs is None:
            xs = np.broadcast_to(x, (total, x.shape[0])).copy()
        spec = compute_lyapunov_spectrum(
            model.step, h0, xs, n_exponents=n_exponents, n_steps=n_steps, warmup=warmup,
            dt=float(model.dt), device=device, seed=seed, quiet=quiet,
        )  # fmt: skip
        means.append(spec["mean"].values)
        sems.append(spec["sem"].values)
    data = {k: ("model", np.asarray(v, dtype=np.int64)) for k, v in counts.items()}
    data["lyapunov_mean"] = (("model", "exponent"), np.stack(means))
    data["lyapunov_sem"] = (("model", "exponent"), np.stack(sems))
    return xr.Dataset(
        data,
        coords={"model": names, "exponent": np.arange(1, n_exponents + 1)},
        attrs={"fixed_points": json.dumps(points), "n_steps": n_steps, "warmup": warmup,
               "n_trajectories": int(h0.shape[0]), "unit": "1/ms"},
    )  # fmt: skip


def lyapunov_agreement(
    comparison: xr.Dataset, a: str, b: str, *, n_sigma: float = 2.0
) -> np.ndarray:
    """Whether each exponent of models ``a`` and ``b`` agrees within ``n_sigma`` combined SEMs.

    Examples
    --------
    >>> ds = xr.Dataset({"lyapunov_mean": (("model", "exponent"), [[-0.1, -0.2], [-0.1, -0.5]]),
    ...                  "lyapunov_sem": (("model", "exponent"), [[0.01, 0.01], [0.01, 0.01]])},
    ...                 coords={"model": ["a", "b"]})
    >>> lyapunov_agreement(ds, "a", "b").tolist()
    [True, False]
    """
    m, s = comparison["lyapunov_mean"], comparison["lyapunov_sem"]
    diff = np.abs(m.sel(model=a).values - m.sel(model=b).values)
    combined = np.hypot(s.sel(model=a).values, s.sel(model=b).values)
    return diff <= n_sigma * combined
