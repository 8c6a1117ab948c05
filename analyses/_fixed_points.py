"""Fixed and slow points of a one-step map (Golub & Sussillo's finder), merged and classified.

The map is any differentiable ``step(h, x) -> h_next`` on batched states ``[B, N]`` that acts on
each row independently (our models' ``model.step``). Fixed points minimise
``q(h) = ½‖F(h, x) − h‖²``: all candidates are optimised at once (Adam with a decaying learning
rate), then polished by a few batched Levenberg–Marquardt (damped Newton) steps, which converge
quadratically onto stable points, saddles and sources alike. Candidates are filtered,
de-duplicated and classified by the eigenvalues of their Jacobians (``_linearisation``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import xarray as xr

from neurosim import resolve_device
from neurosim._trajectories import _encode_attr

from ._linearisation import FINITE, eig_sorted, eigen_vars, jacobians, q_value, time_constants
from ._stepfn import (
    FLOAT32_64,
    Step,
    as_tensor,
    call_step,
    check,
    check_dtype,
    constant_inputs,
    dtype_name,
    first_call,
    int_arg,
    module_dt,
    positive,
    prepare_step,
    progress,
)

_STABILITY = ("stable", "unstable", "saddle", "marginal")


# ----------------------------------------------------------------------------- helpers


def _polish(
    step: Step, h: torch.Tensor, x: torch.Tensor | None, q: torch.Tensor, n_newton: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Batched Levenberg–Marquardt on the residual ``F(h) − h``; a step is kept where q falls."""
    h, q = h.clone(), q.clone()
    b, n = h.shape
    eye = torch.eye(n, dtype=h.dtype, device=h.device)
    mu = torch.full((b,), 1e-4, dtype=h.dtype, device=h.device)
    for _ in range(n_newton):
        floor = 1e-28 * (1.0 + h.pow(2).sum(-1))
        active = torch.isfinite(q) & (q > floor) & (mu < 1e8)
        if not bool(active.any()):
            break
        idx = active.nonzero().squeeze(1)
        ha, xa = h[idx], None if x is None else x[idx]
        with torch.no_grad():
            r = call_step(step, ha, xa) - ha
        a = jacobians(step, ha, xa) - eye
        ata = a.mT @ a
        scale = ata.diagonal(dim1=-2, dim2=-1).mean(-1).clamp_min(1e-12)
        delta, info = torch.linalg.solve_ex(
            ata + (mu[idx] * scale)[:, None, None] * eye, -(a.mT @ r.unsqueeze(-1))
        )
        h_new = ha + delta.squeeze(-1)
        with torch.no_grad():
            q_new = q_value(step, h_new, xa)
        better = (info == 0) & torch.isfinite(q_new) & (q_new < q[idx])
        h[idx[better]], q[idx[better]] = h_new[better], q_new[better]
        mu[idx] = torch.where(better, mu[idx] / 10, mu[idx] * 10)
    return h, q


def _minimise(
    step: Step,
    h0: torch.Tensor,
    x: torch.Tensor | None,
    *,
    n_iter: int,
    lr: float,
    tol_q: float,
    quiet: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Adam on Σ q over all candidates (each q depends on its own row only).

    Written out (β = 0.9, 0.999) rather than ``torch.optim.Adam``, whose first step imports
    torch's compiler stack (seconds). Rows whose gradient is not finite are frozen.
    """
    h = h0.clone()
    m, v = torch.zeros_like(h), torch.zeros_like(h)
    b1, b2, eps = 0.9, 0.999, 1e-8
    bar, _ = progress(n_iter, quiet, "fixed points")
    with bar:
        for it in range(1, n_iter + 1):
            hg = h.detach().requires_grad_(True)
            with torch.enable_grad():
                q = q_value(step, hg, x)
                (grad,) = torch.autograd.grad(q.sum(), hg)
            with torch.no_grad():
                q = q.detach()
                grad = torch.where(torch.isfinite(grad).all(-1, keepdim=True), grad, 0.0)
                m.mul_(b1).add_(grad, alpha=1 - b1)
                v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
                rate = lr * 0.01 ** ((it - 1) / max(n_iter - 1, 1))  # exponential decay to lr/100
                rate = rate * math.sqrt(1 - b2**it) / (1 - b1**it)
                h = h - rate * m / (v.sqrt() + eps)
            if it % 50 == 0 or it == n_iter:
                bar.update(it - bar.n)
                finite = q[torch.isfinite(q)]
                if finite.numel():
                    bar.set_postfix(q_median=f"{finite.median().item():.2e}")
                if finite.numel() == q.numel() and bool((finite < tol_q).all()):
                    break
    with torch.no_grad():
        return h, q_value(step, h, x)


def _dedupe(state: np.ndarray, q: np.ndarray, group: np.ndarray, tol: float) -> np.ndarray:
    """Indices of kept points: repeatedly keep the lowest-q point, drop all within ``tol`` of it."""
    order = np.argsort(q, kind="stable")
    remaining = np.ones(len(q), dtype=bool)
    keep = []
    for i in order:
        if not remaining[i]:
            continue
        keep.append(i)
        near = np.linalg.norm(state - state[i], axis=1) <= tol
        remaining &= ~(near & (group == group[i]))
    return np.asarray(keep, dtype=np.int64)


def classify_stability(eigenvalues: np.ndarray, marginal_tol: float = 1e-3) -> np.ndarray:
    """Stability of fixed points of a discrete-time map from eigenvalues ``[K, N]``.

    ``marginal`` if any ``||λ| − 1| <= marginal_tol``; else ``stable`` if all ``|λ| < 1``,
    ``unstable`` (a source) if all ``|λ| > 1``, and ``saddle`` otherwise.

    Examples
    --------
    >>> classify_stability(np.array([[0.5, 0.1], [2.0, 0.5], [3.0, 1.5], [1.0, 0.2]])).tolist()
    ['stable', 'saddle', 'unstable', 'marginal']
    """
    mag = np.abs(np.atleast_2d(eigenvalues))
    out = np.full(mag.shape[0], "saddle", dtype="<U8")
    out[(mag < 1).all(-1)] = "stable"
    out[(mag > 1).all(-1)] = "unstable"
    out[(np.abs(mag - 1) <= marginal_tol).any(-1)] = "marginal"
    return out


# ----------------------------------------------------------------------------- public API


def sample_states(
    ds: xr.Dataset,
    n: int,
    *,
    seed: int = 0,
    noise_scale: float = 0.0,
    variable: str = "state",
) -> np.ndarray:
    """Draw ``n`` states from trajectories, on valid steps only, as starting points.

    Parameters
    ----------
    ds : xarray.Dataset
        Trajectories with ``state (trial, time, unit)`` (and ``valid (trial, time)``).
    n : int
        Number of states; drawn without replacement when there are enough valid steps.
    seed : int, default 0
    noise_scale : float, default 0.0
        Standard deviation of Gaussian noise added to every coordinate.
    variable : str, default "state"

    Returns
    -------
    numpy.ndarray
        ``[n, N]`` float64.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset({"state": (("trial", "time", "unit"), np.ones((2, 5, 3)))})
    >>> sample_states(ds, 4, seed=0, noise_scale=0.1).shape
    (4, 3)
    """
    if variable not in ds:
        raise KeyError(f"variable {variable!r} not in dataset; it has {sorted(ds.data_vars)}")
    n = int_arg("n", n, 1)
    noise_scale = positive("noise_scale", noise_scale, zero=True)
    x = np.asarray(ds[variable].transpose("trial", "time", "unit").values, dtype=np.float64)
    keep = (
        np.asarray(ds["valid"].transpose("trial", "time").values, dtype=bool)
        if "valid" in ds
        else np.ones(x.shape[:2], dtype=bool)
    )
    pool = x[keep]
    if len(pool) == 0:
        raise ValueError("the dataset has no valid steps to sample states from")
    rng = np.random.default_rng(seed)
    out = pool[rng.choice(len(pool), size=int(n), replace=int(n) > len(pool))]
    if noise_scale > 0:
        out = out + rng.normal(0.0, noise_scale, size=out.shape)
    return out


def compute_fixed_points(
    step: Step,
    initial_states: Any,
    inputs: Any = None,
    *,
    n_iter: int = 1000,
    lr: float = 0.03,
    n_newton: int = 50,
    tol_q: float = 1e-12,
    q_slow: float = 1e-6,
    dedupe_tol: float = 1e-3,
    outlier_tol: float | None = 10.0,
    marginal_tol: float = 1e-3,
    dt: float | None = None,
    dtype: torch.dtype = torch.float64,
    device: str | torch.device = "auto",
    seed: int = 0,
    noise_scale: float = 0.0,
    quiet: bool = False,
) -> xr.Dataset:
    """Fixed and slow points of ``h ← step(h, x)``, their Jacobians, eigenvalues and stability.

    Minimises ``q = ½‖F(h, x) − h‖²`` from every initial state at once: ``n_iter`` Adam steps
    (learning rate ``lr`` decaying exponentially to ``lr / 100``) and then up to ``n_newton``
    batched Levenberg–Marquardt steps. Candidates are then filtered and merged:

    1. ``q >= q_slow`` (or non-finite): not converged, dropped;
    2. outliers, farther from the centroid of the initial states than ``outlier_tol`` times
       their mean distance from it (points run off to infinity), dropped (never when all
       initial states coincide: there is no scale to judge by);
    3. ``q < tol_q``: ``kind="fixed"``; ``tol_q <= q < q_slow``: ``kind="slow"`` (slow points);
    4. duplicates within Euclidean distance ``dedupe_tol`` (and with the same input) merged,
       keeping the lowest q.

    Parameters
    ----------
    step : callable
        ``step(h [B, N], x [B, I] or None) -> h_next [B, N]``, differentiable, acting on each
        row independently. A bound method of a ``torch.nn.Module`` (``net.step``) or a module
        runs on a deep copy cast to ``dtype`` and moved to ``device``, so a float32 model gives
        float64 fixed points and is left untouched. Any other callable must accept ``dtype``.
    initial_states : array_like or torch.Tensor
        ``[B, N]`` starting states, e.g. from :func:`sample_states`.
    inputs : array_like, optional
        ``None`` (autonomous: ``step(h, None)``), one constant input ``[I]``, or ``[B, I]``.
    n_iter, lr : int, float
        Adam steps and initial learning rate.
    n_newton : int, default 50
        Maximum Levenberg–Marquardt polishing steps (0 to skip).
    tol_q, q_slow : float
        Fixed-point and slow-point thresholds on q.
    dedupe_tol : float, default 1e-3
        Distance (state units) below which two points are the same.
    outlier_tol : float or None, default 10.0
        Outlier distance in units of the initial states' mean distance from their centroid
        (``None``: keep all).
    marginal_tol : float, default 1e-3
        ``||λ| − 1|`` at or below which a direction counts as marginal.
    dt : float, optional
        Time step (ms) for ``time_constant``; by default the module's ``dt`` when ``step``
        belongs to one.
    dtype : torch.dtype, default torch.float64
    device : str, default "auto"
    seed, noise_scale : int, float
        Gaussian noise of this standard deviation is added to the initial states (seeded).
    quiet : bool
        No progress bar (always quiet on CI).

    Returns
    -------
    xarray.Dataset
        Dims ``fixed_point, unit, unit_from, eigen`` (and ``input_channel``), sorted by q.
        ``state (fixed_point, unit)``, ``q``, ``kind`` ("fixed"/"slow"), ``stability``
        ("stable", "unstable", "saddle", "marginal"), ``n_unstable`` (number of |λ| > 1),
        ``jacobian (fixed_point, unit, unit_from)`` = dF/dh, ``eigenvalues (fixed_point, eigen)``
        (complex, sorted by |λ| descending) with ``eigenvalue_real``, ``eigenvalue_imag`` and
        ``eigenvalue_abs`` (for saving: drop the complex ``eigenvalues`` first); when inputs
        are given ``input (fixed_point, input_channel)`` and ``input_jacobian`` = dF/dx;
        ``time_constant (fixed_point, eigen)`` = −dt / log|λ| when ``dt`` is known (> 0 decay,
        < 0 growth). Attrs count what was dropped (``n_nonconverged``, ``n_outliers``,
        ``n_duplicates``) and record the settings.

    Examples
    --------
    >>> import numpy as np, torch
    >>> step = lambda h, x: torch.tanh(2.0 * h)
    >>> fps = compute_fixed_points(step, np.linspace(-1.5, 1.5, 21)[:, None], quiet=True,
    ...                            device="cpu")
    >>> fps = fps.sortby(fps.state.isel(unit=0))
    >>> fps.state.values[:, 0].round(4).tolist(), fps.stability.values.tolist()
    ([-0.9575, 0.0, 0.9575], ['stable', 'unstable', 'stable'])
    """
    dev = resolve_device(device)
    n_iter, n_newton = int_arg("n_iter", n_iter, 0), int_arg("n_newton", n_newton, 0)
    lr, tol_q, q_slow = positive("lr", lr), positive("tol_q", tol_q), positive("q_slow", q_slow)
    check("q_slow", q_slow, q_slow >= tol_q, f"a number >= tol_q ({tol_q})")
    dedupe_tol = positive("dedupe_tol", dedupe_tol, zero=True)
    marginal_tol = positive("marginal_tol", marginal_tol, zero=True)
    noise_scale = positive("noise_scale", noise_scale, zero=True)
    if outlier_tol is not None:
        outlier_tol = positive("outlier_tol", outlier_tol)
    dt = module_dt(step) if dt is None else positive("dt", dt)
    check_dtype(dtype, FLOAT32_64)
    fn, step_name = prepare_step(step, dtype, dev)

    h0 = as_tensor("initial_states", initial_states, dtype, dev, finite=FINITE)
    if h0.ndim != 2 or h0.shape[0] == 0 or h0.shape[1] == 0:
        raise ValueError(
            f"initial_states must be a 2-D [B, N] array (B states of N units); got shape "
            f"{tuple(h0.shape)}"
        )
    if noise_scale > 0:
        noise = np.random.default_rng(seed).normal(0.0, noise_scale, tuple(h0.shape))
        h0 = h0 + torch.as_tensor(noise, dtype=dtype).to(dev)
    b, n = h0.shape
    x = constant_inputs(inputs, b, dtype, dev, finite=FINITE)
    first_call(fn, h0[:1], None if x is None else x[:1], strict=False)

    h, q = _minimise(fn, h0, x, n_iter=n_iter, lr=lr, tol_q=tol_q, quiet=quiet)
    if n_newton:
        h, q = _polish(fn, h, x, q, n_newton)

    state, qs = h.cpu().numpy().astype(np.float64), q.cpu().numpy().astype(np.float64)
    init = h0.cpu().numpy().astype(np.float64)
    finite = np.isfinite(qs) & np.isfinite(state).all(-1)
    converged = finite & (np.where(finite, qs, np.inf) < q_slow)
    centre = init.mean(0)
    ref = float(np.linalg.norm(init - centre, axis=1).mean())
    dist = np.linalg.norm(np.where(np.isfinite(state), state, 0.0) - centre, axis=1)
    inlier = np.ones(b, bool) if outlier_tol is None or ref == 0 else dist <= outlier_tol * ref
    cand = np.flatnonzero(converged & inlier)
    x_np = None if x is None else x.cpu().numpy().astype(np.float64)
    group = (
        np.zeros(b, np.int64) if x_np is None else np.unique(x_np, axis=0, return_inverse=True)[1]
    )
    kept = cand[_dedupe(state[cand], qs[cand], group[cand].ravel(), dedupe_tol)]
    kept = kept[np.argsort(qs[kept], kind="stable")]

    k = len(kept)
    hk = h[torch.as_tensor(kept, device=dev)]
    xk = None if x is None else x[torch.as_tensor(kept, device=dev)]
    jac = jacobians(fn, hk, xk).cpu().numpy().astype(np.float64)
    lam, _ = eig_sorted(jac)
    data: dict[str, Any] = {
        "state": (("fixed_point", "unit"), state[kept]),
        "q": ("fixed_point", qs[kept]),
        "kind": ("fixed_point", np.where(qs[kept] < tol_q, "fixed", "slow").astype("<U5")),
        "stability": ("fixed_point", classify_stability(lam, marginal_tol)),
        "n_unstable": ("fixed_point", (np.abs(lam) > 1).sum(-1).astype(np.int64)),
        "jacobian": (("fixed_point", "unit", "unit_from"), jac),
        **eigen_vars(lam, "fixed_point"),
    }
    if dt is not None:
        data["time_constant"] = (("fixed_point", "eigen"), time_constants(lam, dt))
    if x is not None:
        data["input"] = (("fixed_point", "input_channel"), x_np[kept])
        in_jac = jacobians(fn, hk, xk, wrt="x").cpu().numpy().astype(np.float64)
        data["input_jacobian"] = (("fixed_point", "unit", "input_channel"), in_jac)
    coords: dict[str, Any] = {
        "fixed_point": np.arange(k),
        "unit": np.arange(n),
        "unit_from": np.arange(n),
        "eigen": np.arange(n),
    }
    if x is not None:
        coords["input_channel"] = np.arange(x.shape[1])
    attrs = {
        "step": step_name,
        "n_initial": b,
        "n_nonconverged": int((~converged).sum()),
        "n_outliers": int((converged & ~inlier).sum()),
        "n_duplicates": int(len(cand) - k),
        "n_iter": n_iter,
        "n_newton": n_newton,
        "lr": lr,
        "tol_q": tol_q,
        "q_slow": q_slow,
        "dedupe_tol": dedupe_tol,
        "outlier_tol": outlier_tol,
        "marginal_tol": marginal_tol,
        "dt": dt,
        "dtype": dtype_name(dtype),
        "device": str(dev),
        "seed": int(seed),
        "noise_scale": noise_scale,
    }
    attrs = {key: _encode_attr(v) for key, v in attrs.items() if v is not None}
    return xr.Dataset(data, coords=coords, attrs=attrs)
